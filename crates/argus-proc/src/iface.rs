//! Network interfaces: does the one argus captures on exist, and is it up?
//!
//! A missing interface makes argus exit (with status 0) about a second after its start; one that
//! is down leaves argus running and waiting, and it resumes when the link comes back.

use nix::errno::Errno;
use nix::net::if_::InterfaceFlags;

use crate::error::{Error, Result};

/// The state of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceState {
    /// Its name.
    pub name: String,
    /// Its kernel index.
    pub index: u32,
    /// Administratively up (`IFF_UP`), when known.
    pub up: Option<bool>,
    /// Operationally running, i.e. carrier present (`IFF_RUNNING`), when known.
    pub running: Option<bool>,
}

impl InterfaceState {
    /// True when the interface is known to be down or without carrier.
    pub fn is_down(&self) -> bool {
        self.up == Some(false) || self.running == Some(false)
    }
}

/// Looks up an interface by name: [`Error::NoSuchInterface`] when it does not exist.
pub fn interface_state(name: &str) -> Result<InterfaceState> {
    let index = match nix::net::if_::if_nametoindex(name) {
        Ok(index) => index,
        Err(Errno::ENODEV | Errno::ENXIO | Errno::EINVAL | Errno::ENAMETOOLONG) => {
            return Err(Error::NoSuchInterface {
                name: name.to_owned(),
            });
        }
        Err(e) => return Err(Error::Interfaces(e.into())),
    };
    let mut flags: Option<InterfaceFlags> = None;
    for ifa in nix::ifaddrs::getifaddrs().map_err(|e| Error::Interfaces(e.into()))? {
        if ifa.interface_name == name {
            flags = Some(flags.unwrap_or(InterfaceFlags::empty()) | ifa.flags);
        }
    }
    Ok(InterfaceState {
        name: name.to_owned(),
        index,
        up: flags.map(|f| f.contains(InterfaceFlags::IFF_UP)),
        running: flags.map(|f| f.contains(InterfaceFlags::IFF_RUNNING)),
    })
}

/// The interface names in an argus `-i` value: `eth0`, `eth0/srcid`, `ind:eth0,eth1`,
/// `dup:...`, `bond:...`. `any` and `all` name no particular interface and are left out.
pub fn capture_interfaces(spec: &str) -> Vec<&str> {
    let list = ["ind:", "dup:", "bond:"]
        .iter()
        .find_map(|p| spec.strip_prefix(p))
        .unwrap_or(spec);
    list.split(',')
        .map(|item| item.split('/').next().unwrap_or(item).trim())
        .filter(|name| !name.is_empty() && *name != "any" && *name != "all")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_exists_and_is_up() {
        let lo = interface_state("lo").expect("lo exists");
        assert!(lo.index > 0);
        assert_eq!(lo.up, Some(true));
        assert!(!lo.is_down());
    }

    #[test]
    fn a_missing_interface_is_named() {
        for name in ["nosuch0", "", "x".repeat(40).as_str(), "a/b"] {
            let err = interface_state(name).expect_err("missing");
            assert!(
                matches!(err, Error::NoSuchInterface { .. }),
                "{name:?}: {err}"
            );
        }
        let err = interface_state("nosuch0").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "network interface \"nosuch0\" does not exist (argus would exit at once)"
        );
    }

    #[test]
    fn parses_argus_interface_specs() {
        assert_eq!(capture_interfaces("eth0"), ["eth0"]);
        assert_eq!(capture_interfaces("eth0/\"h001\""), ["eth0"]);
        assert_eq!(capture_interfaces("ind:eth0,eth1/7"), ["eth0", "eth1"]);
        assert_eq!(capture_interfaces("bond:eth0,eth1"), ["eth0", "eth1"]);
        assert!(capture_interfaces("any").is_empty());
        assert!(capture_interfaces("all").is_empty());
    }
}
