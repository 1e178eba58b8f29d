//! Syslog transports. TCP keeps one connection open and writes octet-counted frames
//! (RFC 6587); UDP sends one datagram per message (RFC 5426).
//!
//! Neither transport acknowledges: a message counts as delivered once the kernel took it. A
//! connection the receiver closed is noticed before the next write and opened again, but a
//! message written just before a receiver dies can be lost; RFC 5424 syslog has no way to tell.

use std::net::SocketAddr;
use std::time::Duration;

use palisade_core::config::SyslogTransport;
use palisade_proto::v1::Alert;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::retry::Failure;
use crate::syslog::{MAX_TCP_MESSAGE, MAX_UDP_MESSAGE, alert_message, octet_counting_frame};

/// Alerts written together on one TCP connection.
const TCP_BATCH: usize = 64;

/// A syslog receiver.
pub(crate) struct SyslogSink {
    address: String,
    transport: SyslogTransport,
    facility: u8,
    connect_timeout: Duration,
    timeout: Duration,
    tcp: Option<TcpStream>,
    udp: Option<UdpSocket>,
}

/// Whether the receiver closed the connection (receivers never send, so readable means EOF).
fn peer_closed(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 64];
    match stream.try_read(&mut probe) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
    }
}

impl SyslogSink {
    pub fn new(
        address: String,
        transport: SyslogTransport,
        facility: u8,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> SyslogSink {
        SyslogSink {
            address,
            transport,
            facility,
            connect_timeout,
            timeout,
            tcp: None,
            udp: None,
        }
    }

    pub fn batch_limit(&self) -> usize {
        match self.transport {
            SyslogTransport::Tcp => TCP_BATCH,
            SyslogTransport::Udp => 1,
        }
    }

    async fn resolve(&self) -> Result<SocketAddr, Failure> {
        let mut addresses = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::lookup_host(self.address.as_str()),
        )
        .await
        .map_err(|_| Failure::transient(format!("resolving {} timed out", self.address)))?
        .map_err(|error| Failure::transient(format!("cannot resolve {}: {error}", self.address)))?;
        addresses
            .next()
            .ok_or_else(|| Failure::transient(format!("{} resolves to no address", self.address)))
    }

    async fn tcp_stream(&mut self) -> Result<&mut TcpStream, Failure> {
        if self.tcp.as_ref().is_some_and(peer_closed) {
            self.tcp = None;
        }
        if self.tcp.is_none() {
            let address = self.resolve().await?;
            let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(address))
                .await
                .map_err(|_| {
                    Failure::transient(format!("connecting to {} timed out", self.address))
                })?
                .map_err(|error| {
                    Failure::transient(format!("cannot connect to {}: {error}", self.address))
                })?;
            // Frames are written whole; waiting to coalesce them only adds latency.
            let _ = stream.set_nodelay(true);
            self.tcp = Some(stream);
        }
        self.tcp
            .as_mut()
            .ok_or_else(|| Failure::transient("no connection"))
    }

    async fn udp_socket(&mut self) -> Result<&UdpSocket, Failure> {
        if self.udp.is_none() {
            let address = self.resolve().await?;
            let local: SocketAddr = if address.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            let socket = UdpSocket::bind(local).await.map_err(|error| {
                Failure::transient(format!("cannot open a UDP socket: {error}"))
            })?;
            socket.connect(address).await.map_err(|error| {
                Failure::transient(format!("cannot address {}: {error}", self.address))
            })?;
            self.udp = Some(socket);
        }
        self.udp
            .as_ref()
            .ok_or_else(|| Failure::transient("no socket"))
    }

    pub async fn deliver(&mut self, alerts: &[Alert]) -> Result<(), Failure> {
        match self.transport {
            SyslogTransport::Tcp => self.deliver_tcp(alerts).await,
            SyslogTransport::Udp => self.deliver_udp(alerts).await,
        }
    }

    async fn deliver_tcp(&mut self, alerts: &[Alert]) -> Result<(), Failure> {
        let mut frames = Vec::with_capacity(alerts.len() * 512);
        for alert in alerts {
            let message = alert_message(alert, self.facility).format(MAX_TCP_MESSAGE);
            frames.extend_from_slice(&octet_counting_frame(&message));
        }
        let timeout = self.timeout;
        let address = self.address.clone();
        let stream = self.tcp_stream().await?;
        let written = tokio::time::timeout(timeout, stream.write_all(&frames)).await;
        let failure = match written {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => Failure::transient(format!("writing to {address}: {error}")),
            Err(_) => Failure::transient(format!("writing to {address} timed out")),
        };
        // A half-written frame leaves the stream unusable: start the next attempt afresh.
        self.tcp = None;
        Err(failure)
    }

    async fn deliver_udp(&mut self, alerts: &[Alert]) -> Result<(), Failure> {
        let timeout = self.timeout;
        let address = self.address.clone();
        for alert in alerts {
            let message = alert_message(alert, self.facility).format(MAX_UDP_MESSAGE);
            let socket = self.udp_socket().await?;
            let sent = tokio::time::timeout(timeout, socket.send(message.as_bytes())).await;
            let failure = match sent {
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => Failure::transient(format!("sending to {address}: {error}")),
                Err(_) => Failure::transient(format!("sending to {address} timed out")),
            };
            self.udp = None;
            return Err(failure);
        }
        Ok(())
    }
}
