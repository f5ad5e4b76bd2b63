//! Service ClusterIP, NodePort and node pod CIDR allocation.
//!
//! Each range is a bitmap stored in the state store (`/registry/ranges/serviceips`,
//! `/registry/ranges/servicenodeports`, `/registry/ranges/nodecidrs`) and changed only by
//! compare-and-swap, so that an address or subnet is never handed out twice, also across
//! restarts and, later, across several API servers. At start the bitmaps are repaired from the
//! Services and Nodes that exist (a crash between allocating and storing an object leaks nothing
//! for longer than one restart). This module owns the ranges; the write pipeline decides when to
//! allocate and release.

use std::net::Ipv4Addr;
use std::sync::Arc;

use base64::Engine;
use berth_api::ApiError;
use berth_store::{ListOptions, Store, StoreError};
use bytes::Bytes;
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Where the ServiceIP range is stored.
pub const SERVICE_IP_KEY: &str = "/registry/ranges/serviceips";
/// Where the NodePort range is stored.
pub const NODE_PORT_KEY: &str = "/registry/ranges/servicenodeports";
/// Where the node pod CIDR range is stored.
pub const NODE_CIDR_KEY: &str = "/registry/ranges/nodecidrs";
/// Prefix length of each node's pod CIDR (a /24: 254 pod addresses per node).
pub const NODE_CIDR_PREFIX: u8 = 24;
/// The NodePort range.
pub const NODE_PORT_RANGE: (u16, u16) = (30000, 32767);

/// Errors of allocation.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    /// The CIDR is not an IPv4 CIDR Berth can use.
    #[error(
        "invalid service CIDR {0:?}: expected an IPv4 CIDR such as 10.43.0.0/16 with a prefix of /8 to /28"
    )]
    InvalidCidr(String),
    /// The cluster CIDR cannot hold per-node subnets.
    #[error(
        "invalid cluster CIDR {0:?}: expected an IPv4 CIDR such as 10.42.0.0/16 with a prefix of /8 to /24 (each node gets a /24)"
    )]
    InvalidClusterCidr(String),
    /// The store failed.
    #[error("allocation state: {0}")]
    Store(#[from] StoreError),
}

/// An IPv4 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub network: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`.
    pub fn parse(s: &str) -> Result<Self, AllocError> {
        let bad = || AllocError::InvalidCidr(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=28).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
    /// The number of addresses.
    pub fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }
    /// The address at `offset`.
    pub fn nth(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + offset)
    }
    /// The offset of `ip`, if inside.
    pub fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        let o = u32::from(ip).wrapping_sub(u32::from(self.network));
        (u32::from(ip) >= u32::from(self.network) && o < self.size()).then_some(o)
    }
    /// The first usable address (the `kubernetes` Service's).
    pub fn first(&self) -> Ipv4Addr {
        self.nth(1)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A bitmap range persisted in the store.
struct Range {
    key: &'static str,
    label: String,
    size: u32,
}

impl Range {
    fn encode(&self, bits: &[u8]) -> Bytes {
        let v = json!({
            "range": self.label,
            "data": base64::engine::general_purpose::STANDARD.encode(bits),
        });
        Bytes::from(v.to_string())
    }

    fn decode(&self, value: &[u8]) -> Vec<u8> {
        let len = self.size.div_ceil(8) as usize;
        let mut bits = serde_json::from_slice::<Value>(value)
            .ok()
            .and_then(|v| v["data"].as_str().map(str::to_string))
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .unwrap_or_default();
        bits.resize(len, 0);
        bits
    }

    /// Applies `change` to the stored bitmap with compare-and-swap, retrying on conflicts.
    async fn modify<T>(
        &self,
        store: &dyn Store,
        mut change: impl FnMut(&mut Vec<u8>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        for _ in 0..16 {
            let (current, _) = store.get(self.key).await.map_err(store_err)?;
            let (mut bits, rev) = match &current {
                Some(kv) => (self.decode(&kv.value), Some(kv.mod_revision)),
                None => (vec![0; self.size.div_ceil(8) as usize], None),
            };
            let out = change(&mut bits)?;
            let res = match rev {
                Some(rev) => store
                    .update(self.key, rev, self.encode(&bits))
                    .await
                    .map(|_| ()),
                None => store.create(self.key, self.encode(&bits)).await.map(|_| ()),
            };
            match res {
                Ok(()) => return Ok(out),
                Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(ApiError::internal(format!(
            "could not update the allocation range {}: too many conflicts",
            self.key
        )))
    }
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(format!("allocation state: {e}"))
}

fn get_bit(bits: &[u8], i: u32) -> bool {
    bits[(i / 8) as usize] & (1 << (i % 8)) != 0
}

fn set_bit(bits: &mut [u8], i: u32, on: bool) {
    let b = &mut bits[(i / 8) as usize];
    if on {
        *b |= 1 << (i % 8);
    } else {
        *b &= !(1 << (i % 8));
    }
}

/// Picks a free index in `[lo, hi)` starting from a random point, or None.
fn pick_free(bits: &[u8], lo: u32, hi: u32) -> Option<u32> {
    if lo >= hi {
        return None;
    }
    let span = hi - lo;
    let start = rand::rng().random_range(0..span);
    (0..span)
        .map(|i| lo + (start + i) % span)
        .find(|&i| !get_bit(bits, i))
}

/// The allocators of one cluster.
pub struct Allocators {
    store: Arc<dyn Store>,
    cidr: Cidr,
    cluster_cidr: Cidr,
    ips: Range,
    ports: Range,
    pod_cidrs: Range,
    lock: Mutex<()>,
}

impl Allocators {
    /// Creates the allocators and repairs the ranges from the Services and Nodes in the store.
    /// `cidr` is the Service CIDR, `cluster_cidr` the one node pod CIDRs are cut from.
    pub async fn start(
        store: Arc<dyn Store>,
        cidr: Cidr,
        cluster_cidr: Cidr,
    ) -> Result<Self, AllocError> {
        if cluster_cidr.prefix > NODE_CIDR_PREFIX {
            return Err(AllocError::InvalidClusterCidr(cluster_cidr.to_string()));
        }
        let a = Allocators {
            pod_cidrs: Range {
                key: NODE_CIDR_KEY,
                label: cluster_cidr.to_string(),
                size: 1u32 << (NODE_CIDR_PREFIX - cluster_cidr.prefix),
            },
            cluster_cidr,
            ips: Range {
                key: SERVICE_IP_KEY,
                label: cidr.to_string(),
                size: cidr.size(),
            },
            ports: Range {
                key: NODE_PORT_KEY,
                label: format!("{}-{}", NODE_PORT_RANGE.0, NODE_PORT_RANGE.1),
                size: u32::from(NODE_PORT_RANGE.1 - NODE_PORT_RANGE.0) + 1,
            },
            store,
            cidr,
            lock: Mutex::new(()),
        };
        a.repair().await?;
        Ok(a)
    }

    /// The service CIDR.
    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// The cluster CIDR node pod CIDRs are cut from.
    pub fn cluster_cidr(&self) -> Cidr {
        self.cluster_cidr
    }

    /// The index of a node subnet in the cluster CIDR, if it is one of its /24s.
    fn subnet_index(&self, subnet: Cidr) -> Option<u32> {
        if subnet.prefix != NODE_CIDR_PREFIX {
            return None;
        }
        self.cluster_cidr
            .offset(subnet.network)
            .map(|o| o >> (32 - NODE_CIDR_PREFIX))
    }

    /// The `index`th node subnet.
    fn subnet(&self, index: u32) -> Cidr {
        Cidr {
            network: self.cluster_cidr.nth(index << (32 - NODE_CIDR_PREFIX)),
            prefix: NODE_CIDR_PREFIX,
        }
    }

    /// Rebuilds the bitmaps from the Services and Nodes that exist.
    async fn repair(&self) -> Result<(), AllocError> {
        let _g = self.lock.lock().await;
        let nodes = self
            .store
            .list(ListOptions {
                prefix: "/registry/core/nodes/".into(),
                ..Default::default()
            })
            .await?;
        let mut subnets = vec![0u8; self.pod_cidrs.size.div_ceil(8) as usize];
        for kv in &nodes.items {
            let Ok(node) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            for c in node_pod_cidrs(&node) {
                if let Some(i) = self.subnet_index(c) {
                    set_bit(&mut subnets, i, true);
                }
            }
        }
        let list = self
            .store
            .list(ListOptions {
                prefix: "/registry/core/services/".into(),
                ..Default::default()
            })
            .await?;
        let mut ips = vec![0u8; self.cidr.size().div_ceil(8) as usize];
        let mut ports = vec![0u8; self.ports.size.div_ceil(8) as usize];
        for kv in &list.items {
            let Ok(svc) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            for (ip, _) in service_ips(&svc) {
                if let Some(o) = self.cidr.offset(ip) {
                    set_bit(&mut ips, o, true);
                }
            }
            for p in service_node_ports(&svc) {
                set_bit(&mut ports, u32::from(p - NODE_PORT_RANGE.0), true);
            }
        }
        for (range, bits) in [
            (&self.ips, ips),
            (&self.ports, ports),
            (&self.pod_cidrs, subnets),
        ] {
            range
                .modify(self.store.as_ref(), |b| {
                    b.clone_from(&bits);
                    Ok(())
                })
                .await
                .map_err(|e| {
                    AllocError::Store(StoreError::Backend {
                        message: e.message,
                        source: None,
                    })
                })?;
        }
        Ok(())
    }

    /// Allocates `requested` (if given) or a free address. The network and broadcast
    /// addresses are never handed out.
    pub async fn allocate_ip(
        &self,
        requested: Option<Ipv4Addr>,
        service: &str,
    ) -> Result<Ipv4Addr, ApiError> {
        let _g = self.lock.lock().await;
        let cidr = self.cidr;
        let offset = self
            .ips
            .modify(self.store.as_ref(), |bits| {
                let o = match requested {
                    Some(ip) => {
                        let o = cidr.offset(ip).filter(|&o| o > 0 && o < cidr.size() - 1).ok_or_else(|| {
                            invalid_field(
                                service,
                                "spec.clusterIPs", &ip.to_string(), &format!("failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {cidr}"))
                        })?;
                        if get_bit(bits, o) {
                            return Err(invalid_field(
                                service,
                                "spec.clusterIPs", &ip.to_string(), &format!("failed to allocate IP {ip}: provided IP is already allocated")));
                        }
                        o
                    }
                    None => pick_free(bits, 1, cidr.size() - 1).ok_or_else(|| {
                        ApiError::internal(format!("failed to allocate a serviceIP: range is full ({cidr})"))
                    })?,
                };
                set_bit(bits, o, true);
                Ok(o)
            })
            .await?;
        Ok(cidr.nth(offset))
    }

    /// Releases an address (no-op outside the range).
    pub async fn release_ip(&self, ip: Ipv4Addr) -> Result<(), ApiError> {
        let Some(o) = self.cidr.offset(ip) else {
            return Ok(());
        };
        let _g = self.lock.lock().await;
        self.ips
            .modify(self.store.as_ref(), |bits| {
                set_bit(bits, o, false);
                Ok(())
            })
            .await
    }

    /// Allocates `requested` (if given) or a free NodePort.
    pub async fn allocate_port(
        &self,
        requested: Option<u16>,
        field: &str,
        service: &str,
    ) -> Result<u16, ApiError> {
        let _g = self.lock.lock().await;
        let size = self.ports.size;
        let offset = self
            .ports
            .modify(self.store.as_ref(), |bits| {
                let o = match requested {
                    Some(p) => {
                        if !(NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&p) {
                            return Err(invalid_field(
                                service,
                                field, &p.to_string(), &format!("provided port is not in the valid range. The range of valid ports is {}-{}", NODE_PORT_RANGE.0, NODE_PORT_RANGE.1)));
                        }
                        let o = u32::from(p - NODE_PORT_RANGE.0);
                        if get_bit(bits, o) {
                            return Err(invalid_field(
                                service,
                                field, &p.to_string(), "provided port is already allocated"));
                        }
                        o
                    }
                    None => pick_free(bits, 0, size).ok_or_else(|| {
                        ApiError::internal("failed to allocate a nodePort: range is full")
                    })?,
                };
                set_bit(bits, o, true);
                Ok(o)
            })
            .await?;
        // The offset is below the range size, which fits in u16.
        Ok(NODE_PORT_RANGE.0 + u16::try_from(offset).unwrap_or(0))
    }

    /// Releases a NodePort.
    pub async fn release_port(&self, port: u16) -> Result<(), ApiError> {
        if !(NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&port) {
            return Ok(());
        }
        let _g = self.lock.lock().await;
        self.ports
            .modify(self.store.as_ref(), |bits| {
                set_bit(bits, u32::from(port - NODE_PORT_RANGE.0), false);
                Ok(())
            })
            .await
    }
}

impl Allocators {
    /// Allocates a node's pod CIDR: `requested` (which must be one of the cluster CIDR's /24s
    /// and free) or a free one.
    pub async fn allocate_pod_cidr(
        &self,
        requested: Option<&str>,
        node: &str,
    ) -> Result<Cidr, ApiError> {
        let cluster = self.cluster_cidr;
        let wanted = match requested {
            None => None,
            Some(s) => {
                let bad = |detail: String| invalid_object("Node", node, "spec.podCIDR", s, &detail);
                let c = Cidr::parse(s).map_err(|_| bad("must be a valid IPv4 CIDR".into()))?;
                let i = self.subnet_index(c).ok_or_else(|| {
                    bad(format!(
                        "must be a /{NODE_CIDR_PREFIX} inside the cluster CIDR {cluster}"
                    ))
                })?;
                Some((i, s.to_string()))
            }
        };
        let _g = self.lock.lock().await;
        let size = self.pod_cidrs.size;
        let index = self
            .pod_cidrs
            .modify(self.store.as_ref(), |bits| {
                let i = match &wanted {
                    Some((i, s)) => {
                        if get_bit(bits, *i) {
                            return Err(invalid_object(
                                "Node",
                                node,
                                "spec.podCIDR",
                                s,
                                "is already assigned to another node",
                            ));
                        }
                        *i
                    }
                    None => (0..size).find(|&i| !get_bit(bits, i)).ok_or_else(|| {
                        ApiError::internal(format!(
                            "failed to allocate a pod CIDR for node {node}: the cluster CIDR {cluster} is full"
                        ))
                    })?,
                };
                set_bit(bits, i, true);
                Ok(i)
            })
            .await?;
        Ok(self.subnet(index))
    }

    /// Releases a node's pod CIDR (no-op outside the cluster CIDR).
    pub async fn release_pod_cidr(&self, subnet: Cidr) -> Result<(), ApiError> {
        let Some(i) = self.subnet_index(subnet) else {
            return Ok(());
        };
        let _g = self.lock.lock().await;
        self.pod_cidrs
            .modify(self.store.as_ref(), |bits| {
                set_bit(bits, i, false);
                Ok(())
            })
            .await
    }
}

/// The pod CIDRs a Node holds (`spec.podCIDRs`, else `spec.podCIDR`).
pub fn node_pod_cidrs(node: &Value) -> Vec<Cidr> {
    let mut out: Vec<Cidr> = node
        .pointer("/spec/podCIDRs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|s| Cidr::parse(s).ok())
                .collect()
        })
        .unwrap_or_default();
    if out.is_empty()
        && let Some(c) = node
            .pointer("/spec/podCIDR")
            .and_then(Value::as_str)
            .and_then(|s| Cidr::parse(s).ok())
    {
        out.push(c);
    }
    out
}

fn invalid_field(service: &str, field: &str, value: &str, detail: &str) -> ApiError {
    invalid_object("Service", service, field, value, detail)
}

fn invalid_object(kind: &str, name: &str, field: &str, value: &str, detail: &str) -> ApiError {
    ApiError::invalid(
        "",
        kind,
        name,
        vec![berth_api::StatusCause::invalid(
            field,
            &Value::String(value.to_string()),
            detail,
        )],
    )
}

/// The IPv4 cluster IPs of a Service (with their field paths).
pub fn service_ips(svc: &Value) -> Vec<(Ipv4Addr, String)> {
    let mut out = Vec::new();
    if let Some(ips) = svc.pointer("/spec/clusterIPs").and_then(Value::as_array) {
        for (i, ip) in ips.iter().enumerate() {
            if let Some(ip) = ip.as_str().and_then(|s| s.parse().ok()) {
                out.push((ip, format!("spec.clusterIPs[{i}]")));
            }
        }
    }
    if out.is_empty()
        && let Some(ip) = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    {
        out.push((ip, "spec.clusterIP".into()));
    }
    out
}

/// The NodePorts a Service holds.
pub fn service_node_ports(svc: &Value) -> Vec<u16> {
    let mut out: Vec<u16> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .filter(|p| (NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(p))
                .collect()
        })
        .unwrap_or_default();
    if let Some(p) = svc
        .pointer("/spec/healthCheckNodePort")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
    {
        out.push(p);
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_and_offsets() {
        let c = Cidr::parse("10.43.0.0/16").unwrap();
        assert_eq!(c.first(), Ipv4Addr::new(10, 43, 0, 1));
        assert_eq!(c.offset(Ipv4Addr::new(10, 43, 1, 0)), Some(256));
        assert_eq!(c.offset(Ipv4Addr::new(10, 44, 0, 0)), None);
        assert!(Cidr::parse("10.43.0.0").is_err());
        assert!(Cidr::parse("10.43.0.0/31").is_err());
        assert_eq!(
            Cidr::parse("10.43.7.9/24").unwrap().network,
            Ipv4Addr::new(10, 43, 7, 0)
        );
    }

    #[test]
    fn bitmap_helpers() {
        let mut bits = vec![0u8; 2];
        set_bit(&mut bits, 3, true);
        assert!(get_bit(&bits, 3));
        assert_eq!(pick_free(&[0xff, 0xfe], 0, 16), Some(8));
        assert_eq!(pick_free(&[0xff, 0xff], 0, 16), None);
    }
}
