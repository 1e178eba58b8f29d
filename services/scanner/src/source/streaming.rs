//! Applying a layer that arrives as an async byte stream (registry, containerd): the stream is
//! fed through a bounded channel to a blocking thread that decompresses and walks it, so
//! network and decompression overlap and memory stays bounded.

use std::io::Read;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{HashingReader, ResolvedImage, ResolvedLayer};
use crate::error::{Result, ScanError};
use crate::layer::{ImageFilesystem, LayerStats};
use crate::progress::{Progress, ProgressEvent};

/// Chunks in flight between the network and the decompressor.
const CHANNEL_CHUNKS: usize = 64;

struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current[..count]);
        self.current = self.current.slice(count..);
        Ok(count)
    }
}

/// Streams one layer into `filesystem` and verifies its digest. The filesystem moves to the
/// blocking thread and back.
pub(crate) async fn apply_streamed_layer<S>(
    mut filesystem: ImageFilesystem,
    layer: &ResolvedLayer,
    mut stream: S,
) -> Result<(ImageFilesystem, LayerStats, u64)>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    let layer_name = layer.info.digest.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let mut reader = HashingReader::new(ChannelReader {
            receiver,
            current: Bytes::new(),
        });
        let applied = filesystem.apply_layer(&layer_name, &mut reader);
        let finished = applied.and_then(|stats| {
            reader
                .finish()
                .map(|(digest, bytes)| (stats, digest, bytes))
                .map_err(|error| ScanError::LayerFormat {
                    layer: layer_name.clone(),
                    reason: format!("download failed: {error}"),
                })
        });
        (filesystem, finished)
    });
    while let Some(chunk) = stream.next().await {
        let failed = chunk.is_err();
        if sender.send(chunk).await.is_err() || failed {
            break; // the walker stopped (an error it will report) or the download failed
        }
    }
    drop(sender);
    let (filesystem, finished) = worker.await.map_err(|error| ScanError::LayerFormat {
        layer: layer.info.digest.clone(),
        reason: format!("layer worker failed: {error}"),
    })?;
    let (stats, actual, bytes) = finished?;
    layer.verify(actual, &layer.info.digest)?;
    Ok((filesystem, stats, bytes))
}

/// Streams every layer of `image` into `filesystem`, in order, reporting progress; `open`
/// starts the byte stream of the layer with the digest it is given (a registry blob, a
/// containerd content read).
pub(crate) async fn apply_streamed_layers<Open, Opening, S>(
    image: &ResolvedImage,
    mut filesystem: ImageFilesystem,
    progress: &dyn Progress,
    mut open: Open,
) -> Result<ImageFilesystem>
where
    Open: FnMut(String) -> Opening,
    Opening: Future<Output = Result<S>>,
    S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
{
    let total = image.layers.len();
    for (index, layer) in image.layers.iter().enumerate() {
        progress.report(ProgressEvent::LayerStarted {
            index,
            total,
            digest: layer.info.digest.clone(),
            size: layer.info.size,
        });
        let stream = open(layer.info.digest.clone()).await?;
        let (returned, stats, bytes) = apply_streamed_layer(filesystem, layer, stream).await?;
        filesystem = returned;
        progress.report(ProgressEvent::LayerFinished {
            index,
            total,
            digest: layer.info.digest.clone(),
            compressed_bytes: bytes,
            decompressed_bytes: stats.bytes,
        });
    }
    Ok(filesystem)
}
