//! Packet captures with chosen time stamps, for making real argus data at chosen times: the
//! classic pcap format (a 24-byte header, then a 16-byte header per packet) of Ethernet frames.
//! [`capture`] writes one UDP datagram per frame; [`capture_frames`] writes any frames (see
//! [`packet`] for building them), including frames cut short by the snap length.
//! `argus -r FILE -w OUT` turns them into flow records whose start times are the packets' times.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::packet;

/// One captured Ethernet frame: its time (Unix seconds and microseconds), the bytes captured,
/// and its length on the wire, which is more than the bytes captured when the snap length cut it.
#[derive(Clone, Debug)]
pub struct Frame {
    pub at: (u32, u32),
    pub bytes: Vec<u8>,
    pub wire_len: u32,
}

impl Frame {
    /// A frame captured whole.
    pub fn new(at: (u32, u32), bytes: Vec<u8>) -> Frame {
        let wire_len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        Frame {
            at,
            bytes,
            wire_len,
        }
    }

    /// The same frame with only its first `caplen` bytes captured.
    pub fn cut(mut self, caplen: usize) -> Frame {
        self.bytes.truncate(caplen);
        self
    }
}

/// One UDP datagram to capture at `at` (Unix seconds and microseconds).
#[derive(Clone, Copy, Debug)]
pub struct Datagram {
    pub at: (u32, u32),
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

/// The capture of `datagrams`, in the order given (pcap readers expect time order).
pub fn capture(datagrams: &[Datagram]) -> Vec<u8> {
    let frames: Vec<Frame> = datagrams
        .iter()
        .map(|d| Frame::new(d.at, frame(d)))
        .collect();
    capture_frames(&frames)
}

/// The capture of `frames`, in the order given, with a snap length of 65535 bytes.
pub fn capture_frames(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes()); // magic: microsecond times
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // UTC
    out.extend_from_slice(&0u32.to_le_bytes()); // accuracy
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snap length
    out.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    for f in frames {
        out.extend_from_slice(&f.at.0.to_le_bytes());
        out.extend_from_slice(&f.at.1.to_le_bytes());
        let caplen = u32::try_from(f.bytes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&caplen.to_le_bytes());
        out.extend_from_slice(&f.wire_len.max(caplen).to_le_bytes());
        out.extend_from_slice(&f.bytes);
    }
    out
}

fn frame(d: &Datagram) -> Vec<u8> {
    let udp = packet::udp(d.sport, d.dport, b"argus-webjob test datagram");
    let ip = packet::ipv4(d.src, d.dst, packet::UDP, &udp);
    packet::ethernet(packet::ETH_IPV4, &ip)
}

/// The argus data `argus` (argus 3 or argus 5, `sbin/argus`) makes of a capture of
/// `datagrams`: `argus -X -r CAPTURE -w OUT`. Its flows start at the datagrams' times; its MARs
/// carry the wall clock, as argus stamps them when it reads a capture.
pub fn argus_of(argus: &Path, datagrams: &[Datagram]) -> Result<Vec<u8>, String> {
    argus_of_capture(argus, &[], &capture(datagrams))
}

/// The argus data `argus -X ARGS -r CAPTURE -w OUT` makes of the pcap bytes `capture`, run
/// with a bound on its time (a sensor that hangs on a strange packet is killed and reported).
pub fn argus_of_capture(argus: &Path, args: &[&str], capture: &[u8]) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pcap = dir.path().join("capture.pcap");
    std::fs::write(&pcap, capture).map_err(|e| e.to_string())?;
    let out = dir.path().join("capture.argus");
    let mut cmd = std::process::Command::new(argus);
    cmd.arg("-X")
        .args(args)
        .arg("-r")
        .arg(&pcap)
        .arg("-w")
        .arg(&out);
    let run = crate::tools::run_bounded(&mut cmd, std::time::Duration::from_secs(30))
        .map_err(|e| format!("cannot run {}: {e}", argus.display()))?;
    if run.code != Some(0) {
        return Err(format!(
            "{} -r: {} ({})",
            argus.display(),
            String::from_utf8_lossy(&run.stderr),
            run.describe()
        ));
    }
    std::fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))
}
