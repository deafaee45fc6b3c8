//! Distinct UDP flows on `lo`, for the tests and the bench that count flows lost by a rotation:
//! flow `n` is one datagram from `127.NET.(n / 250).(n % 250 + 1)` to `127.0.0.1:PORT`, so each
//! flow's source address is unique and `ra` can list them back.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Flows one sender can make: 250 x 250 source addresses.
pub const MAX_FLOWS: u32 = 250 * 250;

/// A running sender of distinct flows.
#[derive(Debug)]
pub struct Traffic {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<BTreeSet<Ipv4Addr>>,
    port: u16,
    _receiver: UdpSocket,
}

impl Traffic {
    /// Starts sending `per_second` flows a second from `127.NET.0.0/16` to `127.0.0.1:port`
    /// (`0`: a free port), `limit` flows at most ([`MAX_FLOWS`] at most).
    pub fn start(net: u8, port: u16, per_second: u32, limit: u32) -> io::Result<Traffic> {
        let receiver = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
        let port = receiver.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let limit = limit.min(MAX_FLOWS);
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
            let mut sent = BTreeSet::new();
            for n in 0..limit {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let due = start + Duration::from_secs_f64(f64::from(n) / f64::from(per_second));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let [hi, lo] = [n / 250, n % 250 + 1].map(|b| u8::try_from(b).unwrap_or(0));
                let src = Ipv4Addr::new(127, net, hi, lo);
                if UdpSocket::bind(SocketAddrV4::new(src, 0))
                    .and_then(|sock| sock.send_to(b"argus-webjob test flow", to))
                    .is_ok()
                {
                    sent.insert(src);
                }
            }
            sent
        });
        Ok(Traffic {
            stop,
            thread,
            port,
            _receiver: receiver,
        })
    }

    /// The port the flows go to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True once every flow was sent.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops sending (at once, or after the last flow) and returns the source of every flow
    /// sent.
    pub fn stop(self) -> BTreeSet<Ipv4Addr> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the traffic thread panicked")
    }
}

/// Sends `count` UDP datagrams of `size` bytes (65,507 at most) from one socket to
/// `127.0.0.1:port`, `per_second` a second, and returns how many the kernel took. A socket is
/// bound to the port meanwhile (it reads nothing), so no ICMP "port unreachable" answers.
///
/// Paced, a flood of large datagrams fills a capture that stopped reading (a paused argus)
/// within a few dozen packets, while a running capture keeps up with it.
pub fn flood(port: u16, count: u32, size: usize, per_second: u32) -> io::Result<u32> {
    let _receiver = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    let sender = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let payload = vec![0x5a_u8; size];
    let start = Instant::now();
    let mut sent = 0;
    for n in 0..count {
        let due = start + Duration::from_secs_f64(f64::from(n) / f64::from(per_second));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if sender.send_to(&payload, to).is_ok() {
            sent += 1;
        }
    }
    Ok(sent)
}
