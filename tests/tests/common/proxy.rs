//! A TCP relay between two nodes that a test can cut and heal: a network split at the
//! transport level, without privileges. While cut, its connections are shut down and new ones
//! are accepted and closed at once (the dialler sees its handshake fail).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One direction of dialling: connections to [`Link::port`] are relayed to `target`.
pub struct Link {
    /// Where the relay listens on 127.0.0.1.
    pub port: u16,
    cut: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    /// Relays 127.0.0.1:<free port> to 127.0.0.1:`target`.
    pub fn new(target: u16) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a relay");
        let port = listener.local_addr().expect("relay address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (is_cut, is_stopped, streams) = (cut.clone(), stopped.clone(), open.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                if is_stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(inbound) = inbound else { continue };
                if is_cut.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
                let mut streams = streams.lock().unwrap_or_else(|e| e.into_inner());
                // Checked again under the lock: a cut that came while this connection was
                // being made has already drained the open ones, so it would outlive the cut.
                if is_cut.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown(Shutdown::Both);
                    let _ = outbound.shutdown(Shutdown::Both);
                    continue;
                }
                for stream in [&inbound, &outbound] {
                    if let Ok(clone) = stream.try_clone() {
                        streams.push(clone);
                    }
                }
                relay(&inbound, &outbound);
                relay(&outbound, &inbound);
            }
        });
        Link { port, cut, stopped, open }
    }

    /// Stops traffic: open connections are shut down, new ones refused.
    pub fn cut(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        self.cut.store(true, Ordering::SeqCst);
        for stream in open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Lets traffic through again.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.cut();
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn relay(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buffer = [0u8; 64 << 10];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}
