//! Captures of traffic of many kinds, for the sensors to turn into fresh argus data: IPv4 and
//! IPv6 TCP and UDP, IPv6 extension headers, IPv4 and IPv6 fragments, ICMP and ICMPv6 echoes
//! and errors, ARP, VLAN- and QinQ-tagged frames, non-IP ethertypes, frames cut by the snap
//! length, malformed headers and jumbo frames.

use std::net::{Ipv4Addr, Ipv6Addr};

use test_support::packet::{self as p, flags};
use test_support::pcap::Frame;

/// Builds frames one after another, `step_us` microseconds apart from `start`.
struct Clock {
    now: u64,
    step_us: u64,
    frames: Vec<Frame>,
}

impl Clock {
    fn push(&mut self, bytes: Vec<u8>) {
        self.push_frame(|at| Frame::new(at, bytes));
    }

    fn push_frame(&mut self, make: impl FnOnce((u32, u32)) -> Frame) {
        let secs = u32::try_from(self.now / 1_000_000).expect("a time before 2106");
        let micros = u32::try_from(self.now % 1_000_000).expect("micros");
        self.frames.push(make((secs, micros)));
        self.now += self.step_us;
    }
}

fn v4(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, n)
}

fn v6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, n)
}

fn eth4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    p::ethernet(p::ETH_IPV4, &p::ipv4(src, dst, proto, l4))
}

fn eth6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, l4: &[u8]) -> Vec<u8> {
    p::ethernet(p::ETH_IPV6, &p::ipv6(src, dst, next, l4))
}

/// A TCP connection: handshake, `data` each way, and a FIN (or RST) close.
fn tcp_session(c: &mut Clock, ip6: bool, a: u8, sport: u16, data: &[u8], rst: bool) {
    let pkt = |fwd: bool, seq: u32, ack: u32, fl: u8, pay: &[u8]| {
        let (sp, dp) = if fwd { (sport, 80) } else { (80, sport) };
        let seg = p::tcp(sp, dp, seq, ack, fl, pay);
        if ip6 {
            let (s, d) = (v6(u16::from(a)), v6(1));
            let (s, d) = if fwd { (s, d) } else { (d, s) };
            eth6(s, d, p::TCP, &seg)
        } else {
            let (s, d) = if fwd { (v4(a), v4(1)) } else { (v4(1), v4(a)) };
            eth4(s, d, p::TCP, &seg)
        }
    };
    let n = u32::try_from(data.len()).expect("small data");
    c.push(pkt(true, 100, 0, flags::SYN, b""));
    c.push(pkt(false, 500, 101, flags::SYN | flags::ACK, b""));
    c.push(pkt(true, 101, 501, flags::ACK, b""));
    c.push(pkt(true, 101, 501, flags::PSH | flags::ACK, data));
    c.push(pkt(false, 501, 101 + n, flags::PSH | flags::ACK, data));
    if rst {
        c.push(pkt(true, 101 + n, 0, flags::RST, b""));
    } else {
        c.push(pkt(true, 101 + n, 501 + n, flags::FIN | flags::ACK, b""));
        c.push(pkt(false, 501 + n, 102 + n, flags::FIN | flags::ACK, b""));
        c.push(pkt(true, 102 + n, 502 + n, flags::ACK, b""));
    }
}

/// The frames of one capture: `flows` UDP and TCP flows plus one of every other kind, over
/// about `span_s` seconds from `start` (Unix seconds).
pub(crate) fn mix(start: u32, span_s: u32, flows: u8) -> Vec<Frame> {
    let per_flow = 12 + 40;
    let total = u64::from(flows) * per_flow + 120;
    let mut c = Clock {
        now: u64::from(start) * 1_000_000,
        step_us: u64::from(span_s) * 1_000_000 / total,
        frames: Vec::new(),
    };
    let big = vec![0x5a; 8900];
    for i in 0..flows {
        let a = 10 + i;
        // UDP request and answer, IPv4 and IPv6.
        let q = p::udp(40000 + u16::from(i), 53, b"query");
        c.push(eth4(v4(a), v4(2), p::UDP, &q));
        c.push(eth4(
            v4(2),
            v4(a),
            p::UDP,
            &p::udp(53, 40000 + u16::from(i), b"answer"),
        ));
        c.push(eth6(v6(u16::from(a)), v6(2), p::UDP, &q));
        tcp_session(
            &mut c,
            i % 2 == 1,
            a,
            30000 + u16::from(i),
            b"GET / HTTP/1.0\r\n\r\n",
            i % 5 == 0,
        );
    }
    // Jumbo frames: IPv4 UDP and TCP, IPv6 UDP.
    c.push(eth4(v4(3), v4(4), p::UDP, &p::udp(9000, 9001, &big)));
    tcp_session(&mut c, false, 5, 9100, &big, false);
    c.push(eth6(v6(3), v6(4), p::UDP, &p::udp(9000, 9001, &big)));
    // IPv6 extension headers: hop-by-hop (router alert), destination options, routing.
    let udp6 = p::udp(5353, 5353, b"ext");
    let dst = p::ipv6_ext(p::UDP, &[0x01, 0x02, 0, 0], &udp6);
    let hop = p::ipv6_ext(p::DEST_OPTS, &[0x05, 0x02, 0, 0], &dst);
    c.push(eth6(v6(7), v6(8), p::HOP_BY_HOP, &hop));
    let rt = p::ipv6_ext(
        p::TCP,
        &[0, 0, 0, 0, 0, 0],
        &p::tcp(1, 2, 0, 0, flags::SYN, b""),
    );
    c.push(eth6(v6(7), v6(9), p::ROUTING, &rt));
    c.push(eth6(v6(7), v6(10), p::NO_NEXT, b""));
    // Fragments: IPv4 in order, out of order, a lone later fragment; IPv6 first and last.
    let whole = p::udp(7000, 7001, &[0x11; 64]);
    for (id, order) in [(11u16, [0usize, 1, 2]), (12, [2, 0, 1])] {
        for k in order {
            let piece = &whole[k * 24..(k * 24 + 24).min(whole.len())];
            let off = u16::try_from(k * 24).expect("offset");
            let ip = p::ipv4_fragment(v4(20), v4(21), p::UDP, id, off, k < 2, piece);
            c.push(p::ethernet(p::ETH_IPV4, &ip));
        }
    }
    let lone = p::ipv4_fragment(v4(22), v4(23), p::UDP, 13, 800, false, &[0x22; 40]);
    c.push(p::ethernet(p::ETH_IPV4, &lone));
    let f1 = p::ipv6_fragment(p::UDP, 99, 0, true, &whole[..32]);
    let f2 = p::ipv6_fragment(p::UDP, 99, 32, false, &whole[32..]);
    c.push(eth6(v6(20), v6(21), p::FRAGMENT, &f1));
    c.push(eth6(v6(20), v6(21), p::FRAGMENT, &f2));
    // ICMP: echo and reply; errors quoting a UDP and a TCP packet; ICMPv6 likewise, and
    // neighbour discovery.
    c.push(eth4(
        v4(30),
        v4(31),
        p::ICMP,
        &p::icmp(8, 0, 0x0001_0001, b"ping"),
    ));
    c.push(eth4(
        v4(31),
        v4(30),
        p::ICMP,
        &p::icmp(0, 0, 0x0001_0001, b"ping"),
    ));
    let quoted = p::ipv4(v4(30), v4(31), p::UDP, &p::udp(1234, 33434, b""));
    c.push(eth4(v4(31), v4(30), p::ICMP, &p::icmp(3, 3, 0, &quoted)));
    let quoted = p::ipv4(v4(30), v4(32), p::TCP, &p::tcp(1, 2, 0, 0, flags::SYN, b""));
    c.push(eth4(
        v4(33),
        v4(30),
        p::ICMP,
        &p::icmp(11, 0, 0, &quoted[..28]),
    ));
    c.push(eth4(
        v4(33),
        v4(30),
        p::ICMP,
        &p::icmp(5, 1, 0x0a01_0001, &quoted),
    ));
    c.push(eth6(
        v6(30),
        v6(31),
        p::ICMPV6,
        &p::icmp(128, 0, 0x0002_0001, b"ping6"),
    ));
    c.push(eth6(
        v6(31),
        v6(30),
        p::ICMPV6,
        &p::icmp(129, 0, 0x0002_0001, b"ping6"),
    ));
    let quoted6 = p::ipv6(v6(30), v6(31), p::UDP, &p::udp(1234, 33434, b""));
    c.push(eth6(v6(31), v6(30), p::ICMPV6, &p::icmp(1, 4, 0, &quoted6)));
    c.push(eth6(
        v6(32),
        v6(30),
        p::ICMPV6,
        &p::icmp(2, 0, 1280, &quoted6),
    ));
    c.push(eth6(v6(33), v6(30), p::ICMPV6, &p::icmp(3, 0, 0, &quoted6)));
    c.push(eth6(
        v6(30),
        v6(0xff),
        p::ICMPV6,
        &p::icmp(135, 0, 0, &v6(31).octets()),
    ));
    c.push(eth6(
        v6(31),
        v6(30),
        p::ICMPV6,
        &p::icmp(136, 0, 0x6000_0000, &v6(31).octets()),
    ));
    // ARP: request, reply, gratuitous; and one inside a VLAN tag.
    let mac = |n: u8| [0x02, 0, 0, 0, 0, n];
    let req = p::arp(1, (mac(2), v4(40)), ([0; 6], v4(41)));
    c.push(p::ethernet(p::ETH_ARP, &req));
    c.push(p::ethernet(
        p::ETH_ARP,
        &p::arp(2, (mac(1), v4(41)), (mac(2), v4(40))),
    ));
    c.push(p::ethernet(
        p::ETH_ARP,
        &p::arp(1, (mac(2), v4(40)), ([0; 6], v4(40))),
    ));
    c.push(p::ethernet_tagged(p::ETH_VLAN, 7, p::ETH_ARP, &req));
    // VLAN and QinQ tagged IP.
    let ip = p::ipv4(v4(50), v4(51), p::UDP, &p::udp(6000, 6001, b"tagged"));
    c.push(p::ethernet_tagged(p::ETH_VLAN, 100, p::ETH_IPV4, &ip));
    let mut inner = 200u16.to_be_bytes().to_vec();
    inner.extend_from_slice(&p::ETH_IPV4.to_be_bytes());
    inner.extend_from_slice(&ip);
    c.push(p::ethernet_tagged(p::ETH_QINQ, 300, p::ETH_VLAN, &inner));
    let ip6 = p::ipv6(v6(50), v6(51), p::UDP, &p::udp(6000, 6001, b"tagged6"));
    c.push(p::ethernet_tagged(p::ETH_VLAN, 101, p::ETH_IPV6, &ip6));
    // Non-IP ethertypes: LLDP, IPX, MPLS carrying IPv4, PPPoE discovery, loopback, an 802.3
    // length field with LLC, an unknown one.
    for et in [0x88cc, 0x8137, 0x8863, 0x9000, 0x1234, 0x0040] {
        c.push(p::ethernet(
            et,
            &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x42, 0x42, 0x42, 0x42],
        ));
    }
    let mut mpls = vec![0x00, 0x01, 0x01, 0x40];
    mpls.extend_from_slice(&ip);
    c.push(p::ethernet(0x8847, &mpls));
    // Frames cut by the snap length: inside the Ethernet header, the IP header, the TCP
    // header, the payload.
    let t = eth4(
        v4(60),
        v4(61),
        p::TCP,
        &p::tcp(1, 2, 3, 4, flags::SYN, b"payload"),
    );
    for caplen in [10, 20, 40, 58] {
        let t = t.clone();
        c.push_frame(|at| Frame::new(at, t).cut(caplen));
    }
    let u6 = eth6(v6(60), v6(61), p::UDP, &p::udp(1, 2, b"payload6"));
    c.push_frame(|at| Frame::new(at, u6).cut(30));
    // Malformed: IPv4 header length below 5 and past the packet; total length past the frame
    // (below the header: see `fatal_to_argus5`); TCP data offset below 5; UDP length past the packet; IPv6 payload
    // length past the frame; an IP version of 7; an empty frame.
    let u = eth4(v4(70), v4(71), p::UDP, &p::udp(1, 2, b"bad"));
    let t = eth4(
        v4(70),
        v4(72),
        p::TCP,
        &p::tcp(1, 2, 3, 4, flags::SYN, b"bad"),
    );
    let broken: [(&[u8], usize, u8); 7] = [
        (&u, 14, 0x43),
        (&u, 14, 0x4f),
        (&u, 16, 0x7f),
        (&t, 46, 0x20),
        (&u, 38, 0xff),
        (&u, 14, 0x75),
        (&t, 14, 0x46),
    ];
    for (frame, at, value) in broken {
        let mut f = frame.to_vec();
        f[at] = value;
        c.push(f);
    }
    let mut v6bad = eth6(v6(70), v6(71), p::UDP, &p::udp(1, 2, b"bad"));
    v6bad[18] = 0x7f;
    c.push(v6bad);
    c.push(Vec::new());
    c.frames
}

/// An IPv4 UDP packet whose total length (8) is below its header length, at `secs`: argus
/// 5.0.3 dies of it (SIGSEGV).
pub(crate) fn fatal_to_argus5(secs: u32) -> Frame {
    let mut f = eth4(v4(70), v4(71), p::UDP, &p::udp(1, 2, b"bad"));
    f[17] = 0x08;
    Frame::new((secs, 0), f)
}
