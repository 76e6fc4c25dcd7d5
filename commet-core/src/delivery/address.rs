//! Which addresses a delivery may not reach unless private addresses are allowed: checked on
//! an endpoint's URL when it is registered ([`UrlPolicy`](super::UrlPolicy)) and on every
//! address its host resolves to when a transport connects (`commet-webhooks`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Is `ip` an address a webhook delivery must not connect to unless private addresses are
/// allowed (in live mode, by the engine's configuration)?
///
/// `true` for every address that is not a publicly routable unicast address, so that an
/// endpoint URL cannot be used to reach the host itself or its private network (SSRF):
///
/// - IPv4: "this network" `0.0.0.0/8` (unspecified included), private `10/8`, `172.16/12`,
///   `192.168/16`, shared CGNAT `100.64/10`, loopback `127/8`, link-local `169.254/16` (cloud
///   metadata services live there), IETF protocol assignments `192.0.0/24`, the documentation
///   nets `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, benchmarking `198.18/15`, the
///   deprecated 6to4 relay anycast `192.88.99/24`, multicast
///   `224/4`, reserved `240/4` and broadcast `255.255.255.255`.
/// - IPv6: unspecified `::`, loopback `::1`, unique local `fc00::/7`, link-local `fe80::/10`,
///   the deprecated site-local `fec0::/10`, multicast `ff00::/8`, documentation `2001:db8::/32`,
///   discard-only `100::/64`, local-use NAT64 `64:ff9b:1::/48`, Teredo `2001::/32` and the
///   documentation prefix `3fff::/20`.
/// - IPv6 addresses that carry an IPv4 address are judged by that IPv4 address: IPv4-mapped
///   `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, IPv4-compatible `::a.b.c.d`,
///   well-known NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48`.
///
/// ```
/// use std::net::IpAddr;
/// use commet_core::delivery::is_forbidden_address;
///
/// let ip = |s: &str| s.parse::<IpAddr>().unwrap();
/// assert!(is_forbidden_address(ip("127.0.0.1")));
/// assert!(is_forbidden_address(ip("::ffff:10.0.0.1")));
/// assert!(!is_forbidden_address(ip("93.184.215.14")));
/// ```
#[must_use]
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", 0.0.0.0 included (Linux connects it to the local host)
        || a == 10 // private
        || (a == 100 && (b & 0xc0) == 64) // shared address space (CGNAT)
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (b & 0xf0) == 16) // private
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF assignments, TEST-NET-1
        || (a == 192 && b == 168) // private
        || (a == 192 && b == 88 && c == 99) // deprecated 6to4 relay anycast
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    let [s0, s1, s2, s3, ..] = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || (s0 & 0xfe00) == 0xfc00 // unique local
        || (s0 & 0xffc0) == 0xfe80 // link-local
        || (s0 & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s0 & 0xff00) == 0xff00 // multicast
        || (s0 == 0x2001 && s1 == 0x0db8) // documentation
        || (s0 == 0x2001 && s1 == 0) // Teredo (carries an obfuscated IPv4 address)
        || (s0 & 0xfff0) == 0x3ff0 // documentation (3fff::/20)
        || (s0 == 0x0100 && s1 == 0 && s2 == 0 && s3 == 0) // discard-only
        || (s0 == 0x0064 && s1 == 0xff9b && s2 == 0x0001) // local-use NAT64
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that carries one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [s0, s1, s2, s3, s4, s5, s6, s7] = ip.segments();
    let low = Ipv4Addr::new(hi(s6), lo(s6), hi(s7), lo(s7));
    match (s0, s1, s2, s3, s4, s5) {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (`::` and `::1` included:
        // 0.0.0.0 and 0.0.0.1 are forbidden too), and the well-known NAT64 prefix
        // 64:ff9b::/96.
        // 64:ff9b::/96, and the IPv4-translated ::ffff:0:a.b.c.d (SIIT).
        (0, 0, 0, 0, 0, 0xffff | 0) | (0x0064, 0xff9b, 0, 0, 0, 0) | (0, 0, 0, 0, 0xffff, 0) => {
            Some(low)
        }
        // 6to4 2002:aabb:ccdd::/48.
        (0x2002, ..) => Some(Ipv4Addr::new(hi(s1), lo(s1), hi(s2), lo(s2))),
        _ => None,
    }
}

fn hi(segment: u16) -> u8 {
    let [high, _] = segment.to_be_bytes();
    high
}

fn lo(segment: u16) -> u8 {
    let [_, low] = segment.to_be_bytes();
    low
}

#[cfg(test)]
mod tests {
    use super::is_forbidden_address;
    use std::net::IpAddr;

    fn forbidden(text: &str) -> bool {
        match text.parse::<IpAddr>() {
            Ok(ip) => is_forbidden_address(ip),
            Err(error) => panic!("bad test address {text}: {error}"),
        }
    }

    #[test]
    fn ipv4_non_public_ranges_are_forbidden() {
        for text in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(forbidden(text), "{text} should be forbidden");
        }
    }

    #[test]
    fn ipv4_public_addresses_are_allowed() {
        for text in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.167.0.1",
            "192.169.0.1",
            "198.17.0.1",
            "198.20.0.1",
            "203.0.114.1",
            "223.255.255.255",
        ] {
            assert!(!forbidden(text), "{text} should be allowed");
        }
    }

    #[test]
    fn ipv6_non_public_ranges_are_forbidden() {
        for text in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "100::1",
            "64:ff9b:1::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "3fff::1",
            "3fff:fff::1",
        ] {
            assert!(forbidden(text), "{text} should be forbidden");
        }
    }

    #[test]
    fn ipv6_public_addresses_are_allowed() {
        for text in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001:80b::200e",
            "fbff::1",
            "fe00::1",
            "100:0:0:1::1",
        ] {
            assert!(!forbidden(text), "{text} should be allowed");
        }
    }

    #[test]
    fn ipv6_forms_carrying_ipv4_are_judged_by_the_ipv4_address() {
        for text in [
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:100.64.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::192.168.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "2002:7f00:1::1",
            "2002:c0a8:101::",
            "::ffff:0:7f00:1",
            "::ffff:0:10.0.0.1",
        ] {
            assert!(forbidden(text), "{text} should be forbidden");
        }
        for text in [
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::1.1.1.1",
            "2002:808:808::1",
            "::ffff:0:8.8.8.8",
        ] {
            assert!(!forbidden(text), "{text} should be allowed");
        }
    }
}
