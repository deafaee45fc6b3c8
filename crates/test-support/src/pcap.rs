//! Packet captures with chosen time stamps, for making real argus data at chosen times: the
//! classic pcap format (a 24-byte header, then a 16-byte header per packet) of Ethernet frames
//! carrying one UDP datagram each. `argus -r FILE -w OUT` turns them into flow records whose
//! start times are the packets' times.

use std::net::Ipv4Addr;

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
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes()); // magic: microsecond times
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // UTC
    out.extend_from_slice(&0u32.to_le_bytes()); // accuracy
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snap length
    out.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    for d in datagrams {
        let frame = frame(d);
        out.extend_from_slice(&d.at.0.to_le_bytes());
        out.extend_from_slice(&d.at.1.to_le_bytes());
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

fn frame(d: &Datagram) -> Vec<u8> {
    let payload = b"argus-webjob test datagram";
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // destination MAC
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // source MAC
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&u16::try_from(ip_len).unwrap_or(u16::MAX).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&d.src.octets());
    ip.extend_from_slice(&d.dst.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&d.sport.to_be_bytes());
    f.extend_from_slice(&d.dport.to_be_bytes());
    f.extend_from_slice(&u16::try_from(udp_len).unwrap_or(u16::MAX).to_be_bytes());
    f.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum
    f.extend_from_slice(payload);
    f
}

/// The Internet checksum of an IPv4 header.
fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0)
}

/// The argus data `argus` (argus 3 or argus 5, `sbin/argus`) makes of a capture of
/// `datagrams`: `argus -X -r CAPTURE -w OUT`. Its flows start at the datagrams' times; its MARs
/// carry the wall clock, as argus stamps them when it reads a capture.
pub fn argus_of(argus: &std::path::Path, datagrams: &[Datagram]) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pcap = dir.path().join("capture.pcap");
    std::fs::write(&pcap, capture(datagrams)).map_err(|e| e.to_string())?;
    let out = dir.path().join("capture.argus");
    let run = std::process::Command::new(argus)
        .arg("-X")
        .arg("-r")
        .arg(&pcap)
        .arg("-w")
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", argus.display()))?;
    if !run.status.success() {
        return Err(format!(
            "{} -r: {}",
            argus.display(),
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    std::fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))
}
