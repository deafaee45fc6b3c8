//! Building the bytes of network packets, layer by layer, for captures of chosen traffic: each
//! function wraps a payload in one header (Ethernet, an 802.1Q tag, IPv4, IPv6 and its extension
//! headers, TCP, UDP, ICMP, ICMPv6, ARP). Lengths are filled in from the payload and the IPv4
//! header checksum is computed; transport checksums are left at zero (argus does not check them).
//! A caller wanting a malformed packet builds a correct one and then breaks the bytes it chooses.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Ethertype of IPv4.
pub const ETH_IPV4: u16 = 0x0800;
/// Ethertype of ARP.
pub const ETH_ARP: u16 = 0x0806;
/// Ethertype of an 802.1Q VLAN tag.
pub const ETH_VLAN: u16 = 0x8100;
/// Ethertype of an 802.1ad (QinQ) service tag.
pub const ETH_QINQ: u16 = 0x88a8;
/// Ethertype of IPv6.
pub const ETH_IPV6: u16 = 0x86dd;

/// IP protocol number of ICMP.
pub const ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const TCP: u8 = 6;
/// IP protocol number of UDP.
pub const UDP: u8 = 17;
/// IPv6 next header of a hop-by-hop options header.
pub const HOP_BY_HOP: u8 = 0;
/// IPv6 next header of a routing header.
pub const ROUTING: u8 = 43;
/// IPv6 next header of a fragment header.
pub const FRAGMENT: u8 = 44;
/// IPv6 next header of ICMPv6.
pub const ICMPV6: u8 = 58;
/// IPv6 next header "no next header".
pub const NO_NEXT: u8 = 59;
/// IPv6 next header of a destination options header.
pub const DEST_OPTS: u8 = 60;

/// TCP flag bits.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// An Ethernet II frame from `02:00:00:00:00:02` to `02:00:00:00:00:01`.
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An Ethernet frame whose payload carries a VLAN tag of `tpid` (802.1Q or 802.1ad) with
/// VLAN id `vid`, followed by `ethertype`.
pub fn ethernet_tagged(tpid: u16, vid: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut tagged = (vid & 0x0fff).to_be_bytes().to_vec();
    tagged.extend_from_slice(&ethertype.to_be_bytes());
    tagged.extend_from_slice(payload);
    ethernet(tpid, &tagged)
}

/// An IPv4 packet (TTL 64, no options, identification 1, don't-fragment set).
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = ipv4_fragment(src, dst, proto, 1, 0, false, payload);
    ip[6] = 0x40;
    ip[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip
}

/// One fragment of an IPv4 packet with identification `id`: `payload` starts `offset` bytes
/// (a multiple of 8) into the original payload; `more` sets the more-fragments flag.
pub fn ipv4_fragment(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    offset: u16,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap_or(u16::MAX);
    let frag = (offset / 8) | if more { 0x2000 } else { 0 };
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&id.to_be_bytes());
    ip.extend_from_slice(&frag.to_be_bytes());
    ip.extend_from_slice(&[64, proto, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

/// An IPv6 packet whose first next header is `next` (hop limit 64).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    ip.extend_from_slice(&len.to_be_bytes());
    ip.extend_from_slice(&[next, 64]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(payload);
    ip
}

/// An IPv6 options or routing extension header (hop-by-hop, destination options, routing)
/// followed by `next`: `body` is padded with zeros to a multiple of 8 bytes with its 2-byte head.
pub fn ipv6_ext(next: u8, body: &[u8], payload: &[u8]) -> Vec<u8> {
    let words = (2 + body.len()).div_ceil(8);
    let mut h = vec![next, u8::try_from(words - 1).unwrap_or(u8::MAX)];
    h.extend_from_slice(body);
    h.resize(words * 8, 0);
    h.extend_from_slice(payload);
    h
}

/// An IPv6 fragment header followed by `next`, for the fragment at `offset` (a multiple of 8).
pub fn ipv6_fragment(next: u8, id: u32, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&((offset & !7) | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A TCP segment with a 20-byte header (window 65535).
pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

/// A UDP datagram.
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// An ICMP (or ICMPv6) message: type, code, the 4 bytes after the checksum (identifier and
/// sequence of an echo, the MTU of a packet-too-big) and the rest (an error's quoted packet).
pub fn icmp(kind: u8, code: u8, word: u32, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&word.to_be_bytes());
    m.extend_from_slice(rest);
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// An ARP packet for Ethernet and IPv4: `op` 1 is a request, 2 a reply.
pub fn arp(op: u16, sender: ([u8; 6], Ipv4Addr), target: ([u8; 6], Ipv4Addr)) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sender.0);
    a.extend_from_slice(&sender.1.octets());
    a.extend_from_slice(&target.0);
    a.extend_from_slice(&target.1.octets());
    a
}

/// The Internet checksum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_datagram_of_the_old_writer_is_built_byte_for_byte() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let ip = ipv4(a, b, UDP, &udp(1, 2, b"xy"));
        assert_eq!(&ip[..8], &[0x45, 0, 0, 30, 0, 1, 0x40, 0]);
        assert_eq!(
            checksum(&ip[..20]),
            0,
            "a header with its checksum sums to zero"
        );
        assert_eq!(&ip[20..], &[0, 1, 0, 2, 0, 10, 0, 0, b'x', b'y']);
        let f = ipv4_fragment(a, b, UDP, 7, 16, true, b"");
        assert_eq!(&f[4..8], &[0, 7, 0x20, 2]);
        assert_eq!(ipv6_ext(UDP, &[1, 2], b"").len(), 8);
        assert_eq!(
            ethernet_tagged(ETH_VLAN, 5, ETH_ARP, b"")[12..],
            [0x81, 0, 0, 5, 8, 6]
        );
    }
}
