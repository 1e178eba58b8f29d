//! Graceful shutdown: SIGTERM or SIGINT asks every part to drain and flush, once.

use tokio::sync::watch;

/// A shutdown signal shared by every part of a process.
#[derive(Clone)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Shutdown {
        let (sender, _) = watch::channel(false);
        Shutdown { sender }
    }

    /// Asks every part to stop.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Whether shutdown was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Resolves once shutdown is asked for (at once if it already was).
    pub async fn triggered(&self) {
        let mut receiver = self.sender.subscribe();
        // An error means the sender is gone, which also means stop.
        let _ = receiver.wait_for(|triggered| *triggered).await;
    }

    /// Triggers the signal on SIGTERM or SIGINT; returns the name of the signal received.
    pub async fn trigger_on_signals(&self) -> std::io::Result<&'static str> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let received = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            _ = self.triggered() => "shutdown request",
        };
        self.trigger();
        Ok(received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_before_and_after_the_trigger_are_released() {
        let shutdown = Shutdown::new();
        let waiter = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move { shutdown.triggered().await })
        };
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        waiter.await.expect("released");
        shutdown.triggered().await;
        assert!(shutdown.is_triggered());
    }
}
