//! What the kernel needs from a flattened device tree (Xen on ARM hands the
//! guest one instead of a start info): RAM, the command line, the `hypervisor`
//! node (grant-table region, free regions for mappings, event-channel PPI),
//! the emulated UART and the interrupt controller.
//!
//! Parsing goes through the `fdt` crate over a byte slice, so it is plain
//! Rust that builds and is tested on the host; the boot code only turns the
//! address Xen passed into that slice. The result is copied into fixed-size
//! tables: nothing borrows the blob afterwards.
//!
//! Never: trust a region that wraps around the address space (dropped), or
//! keep more regions than the tables hold (the rest are ignored and counted).

use core::ops::Range;
use fdt::Fdt;
use fdt::node::FdtNode;

/// Most RAM banks kept (Xen gives a guest at most two).
pub const MAX_MEMORY_REGIONS: usize = 8;
/// Most `hypervisor` regions kept (the grant-table region and the free ones).
pub const MAX_HYPERVISOR_REGIONS: usize = 8;
/// Longest command line kept.
pub const MAX_COMMAND_LINE: usize = 1024;

/// Why a device tree was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceTreeError {
    /// Not a flattened device tree (bad magic or too short).
    NotADeviceTree,
}

/// A list of address ranges with a fixed capacity.
#[derive(Debug, Clone)]
pub struct Ranges<const N: usize> {
    ranges: [Range<u64>; N],
    len: usize,
    dropped: usize,
}

impl<const N: usize> Ranges<N> {
    const fn new() -> Self {
        Self { ranges: [const { 0..0 }; N], len: 0, dropped: 0 }
    }

    fn push(&mut self, start: u64, size: u64) {
        match (start.checked_add(size), self.ranges.get_mut(self.len)) {
            (Some(end), Some(slot)) if size > 0 => {
                *slot = start..end;
                self.len += 1;
            }
            _ => self.dropped += 1,
        }
    }

    /// The ranges kept, in device-tree order.
    pub fn as_slice(&self) -> &[Range<u64>] {
        &self.ranges[..self.len]
    }

    /// Ranges left out (empty, wrapping, or beyond the capacity).
    pub fn dropped(&self) -> usize {
        self.dropped
    }
}

/// Which interrupt controller the device tree describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptController {
    /// `arm,gic-v3`: distributor and redistributor bases.
    GicV3 {
        /// GICD base.
        distributor: u64,
        /// First GICR base.
        redistributor: u64,
    },
    /// `arm,cortex-a15-gic` / `arm,gic-400`: distributor and CPU interface.
    GicV2 {
        /// GICD base.
        distributor: u64,
        /// GICC base.
        cpu_interface: u64,
    },
}

/// An [`InterruptController`] (or its absence) in words, for the log.
pub struct InterruptControllerName(pub Option<InterruptController>);

impl core::fmt::Display for InterruptControllerName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(InterruptController::GicV3 { distributor, redistributor }) => {
                write!(f, "GICv3 (distributor {distributor:#x}, redistributor {redistributor:#x})")
            }
            Some(InterruptController::GicV2 { distributor, cpu_interface }) => {
                write!(f, "GICv2 (distributor {distributor:#x}, CPU interface {cpu_interface:#x})")
            }
            None => f.write_str("no interrupt controller"),
        }
    }
}

/// The facts the kernel takes from the device tree.
#[derive(Debug, Clone)]
pub struct DeviceTree {
    /// The blob's size in bytes (`totalsize`), to keep it out of the allocators.
    pub total_size: u64,
    /// RAM banks (`device_type = "memory"` nodes).
    pub memory: Ranges<MAX_MEMORY_REGIONS>,
    command_line: [u8; MAX_COMMAND_LINE],
    command_line_len: usize,
    /// The `xen,xen` node's `compatible` first entry (e.g. `xen,xen-4.17`).
    pub xen_compatible: Option<[u8; 32]>,
    /// The `hypervisor` node's `reg`: region 0 is where the grant table goes,
    /// the others are free guest-physical space for mappings.
    pub hypervisor_regions: Ranges<MAX_HYPERVISOR_REGIONS>,
    /// The event-channel interrupt as GIC INTID (PPI n is INTID 16 + n).
    pub event_interrupt: Option<u32>,
    /// The first `arm,sbsa-uart` / `arm,pl011` (Xen's `vuart`) MMIO base.
    pub uart: Option<u64>,
    /// The interrupt controller.
    pub interrupt_controller: Option<InterruptController>,
}

impl DeviceTree {
    /// Parses a flattened device tree.
    pub fn parse(blob: &[u8]) -> Result<Self, DeviceTreeError> {
        let fdt = Fdt::new(blob).map_err(|_| DeviceTreeError::NotADeviceTree)?;
        let mut tree = Self {
            total_size: fdt.total_size() as u64,
            memory: Ranges::new(),
            command_line: [0; MAX_COMMAND_LINE],
            command_line_len: 0,
            xen_compatible: None,
            hypervisor_regions: Ranges::new(),
            event_interrupt: None,
            uart: None,
            interrupt_controller: None,
        };
        for node in fdt.all_nodes() {
            tree.take_node(node);
        }
        // Not `fdt.chosen()`: it panics when there is no /chosen node.
        let bootargs = fdt.find_node("/chosen").and_then(|chosen| chosen.property("bootargs"));
        if let Some(bootargs) = bootargs.and_then(|property| property.as_str()) {
            let len = bootargs.len().min(MAX_COMMAND_LINE);
            tree.command_line[..len].copy_from_slice(&bootargs.as_bytes()[..len]);
            tree.command_line_len = len;
        }
        Ok(tree)
    }

    fn take_node(&mut self, node: FdtNode<'_, '_>) {
        let is_memory = node.property("device_type").and_then(|property| property.as_str()) == Some("memory");
        if is_memory {
            for (start, size) in regions(node) {
                self.memory.push(start, size);
            }
            return;
        }
        let Some(compatible) = node.compatible() else { return };
        let has = |name: &str| compatible.all().any(|entry| entry == name);
        if has("xen,xen") && self.xen_compatible.is_none() {
            let mut name = [0u8; 32];
            let first = compatible.first().as_bytes();
            let len = first.len().min(name.len());
            name[..len].copy_from_slice(&first[..len]);
            self.xen_compatible = Some(name);
            for (start, size) in regions(node) {
                self.hypervisor_regions.push(start, size);
            }
            self.event_interrupt = first_interrupt(node);
        } else if (has("arm,sbsa-uart") || has("arm,pl011")) && self.uart.is_none() {
            self.uart = regions(node).next().map(|(start, _)| start);
        } else if has("arm,gic-v3") {
            let mut bases = regions(node).map(|(start, _)| start);
            if let (Some(distributor), Some(redistributor)) = (bases.next(), bases.next()) {
                self.interrupt_controller = Some(InterruptController::GicV3 { distributor, redistributor });
            }
        } else if has("arm,cortex-a15-gic") || has("arm,gic-400") {
            let mut bases = regions(node).map(|(start, _)| start);
            if let (Some(distributor), Some(cpu_interface)) = (bases.next(), bases.next()) {
                self.interrupt_controller = Some(InterruptController::GicV2 { distributor, cpu_interface });
            }
        }
    }

    /// `/chosen/bootargs` (empty if absent; cut at [`MAX_COMMAND_LINE`] and
    /// at the first byte that is not UTF-8).
    pub fn command_line(&self) -> &str {
        let bytes = &self.command_line[..self.command_line_len];
        match core::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => core::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default(),
        }
    }

    /// The `xen,xen-X.Y` entry of the hypervisor node, if there is one.
    pub fn xen_compatible(&self) -> Option<&str> {
        let name = self.xen_compatible.as_ref()?;
        let len = name.iter().position(|&byte| byte == 0).unwrap_or(name.len());
        core::str::from_utf8(&name[..len]).ok()
    }
}

/// A node's `reg` entries as (start, size); nodes whose parent uses more
/// than two cells per number give none.
fn regions<'a>(node: FdtNode<'_, 'a>) -> impl Iterator<Item = (u64, u64)> + 'a {
    node.reg().into_iter().flatten().map(|region| (region.starting_address as u64, region.size.unwrap_or(0) as u64))
}

/// The first entry of a node's `interrupts` (GIC binding: type, number,
/// flags) as an INTID: PPI n is 16 + n, SPI n is 32 + n.
fn first_interrupt(node: FdtNode<'_, '_>) -> Option<u32> {
    let value = node.property("interrupts")?.value;
    let cell = |index: usize| -> Option<u32> {
        let bytes = value.get(index * 4..index * 4 + 4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    };
    match (cell(0)?, cell(1)?) {
        (1, number) if number < 16 => Some(16 + number),
        (0, number) if number < 988 => Some(32 + number),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny flattened device tree writer, enough for the tests' trees.
    struct Builder {
        structure: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn new() -> Self {
            Self { structure: Vec::new(), strings: Vec::new() }
        }
        fn word(&mut self, value: u32) {
            self.structure.extend_from_slice(&value.to_be_bytes());
        }
        fn begin(&mut self, name: &str) -> &mut Self {
            self.word(1);
            self.structure.extend_from_slice(name.as_bytes());
            self.structure.push(0);
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
            self
        }
        fn end(&mut self) -> &mut Self {
            self.word(2);
            self
        }
        fn property(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let offset = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.word(3);
            self.word(value.len() as u32);
            self.word(offset);
            self.structure.extend_from_slice(value);
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
            self
        }
        fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
            let bytes: Vec<u8> = cells.iter().flat_map(|cell| cell.to_be_bytes()).collect();
            self.property(name, &bytes)
        }
        fn text(&mut self, name: &str, text: &str) -> &mut Self {
            let mut bytes = text.replace('|', "\0").into_bytes();
            bytes.push(0);
            self.property(name, &bytes)
        }
        fn finish(&mut self) -> Vec<u8> {
            self.word(9);
            let header = 40u32;
            let reservations = 16u32;
            let structure_offset = header + reservations;
            let strings_offset = structure_offset + self.structure.len() as u32;
            let total = strings_offset + self.strings.len() as u32;
            let mut blob = Vec::new();
            for word in [
                0xd00d_feed,
                total,
                structure_offset,
                strings_offset,
                header,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structure.len() as u32,
            ] {
                blob.extend_from_slice(&word.to_be_bytes());
            }
            blob.extend_from_slice(&[0; 16]);
            blob.extend_from_slice(&self.structure);
            blob.extend_from_slice(&self.strings);
            blob
        }
    }

    /// What libxl gives a 128 MiB guest with `vuart = "sbsa_uart"`, trimmed.
    fn domu_tree() -> Vec<u8> {
        let mut tree = Builder::new();
        tree.begin("").cells("#address-cells", &[2]).cells("#size-cells", &[2]);
        tree.begin("chosen").text("bootargs", "loglevel=info ip=dhcp").end();
        tree.begin("memory@40000000")
            .text("device_type", "memory")
            .cells("reg", &[0, 0x4000_0000, 0, 0x0800_0000])
            .end();
        tree.begin("interrupt-controller@3001000")
            .text("compatible", "arm,gic-v3")
            .cells("#interrupt-cells", &[3])
            .cells("reg", &[0, 0x0300_1000, 0, 0x10000, 0, 0x0302_0000, 0, 0x100_0000])
            .end();
        tree.begin("hypervisor@38000000")
            .text("compatible", "xen,xen-4.17|xen,xen")
            .cells("reg", &[0, 0x3800_0000, 0, 0x100_0000, 0, 0x4800_0000, 0, 0xb800_0000])
            .cells("interrupts", &[1, 15, 0xf08])
            .end();
        tree.begin("sbsa-uart@22000000")
            .text("compatible", "arm,sbsa-uart")
            .cells("reg", &[0, 0x2200_0000, 0, 0x1000])
            .end();
        tree.end();
        tree.finish()
    }

    #[test]
    fn reads_what_a_xen_domu_tree_says() {
        let blob = domu_tree();
        let tree = DeviceTree::parse(&blob).unwrap();
        assert_eq!(tree.total_size, blob.len() as u64);
        assert_eq!(tree.memory.as_slice().to_vec(), vec![0x4000_0000u64..0x4800_0000]);
        assert_eq!(tree.command_line(), "loglevel=info ip=dhcp");
        assert_eq!(tree.xen_compatible(), Some("xen,xen-4.17"));
        assert_eq!(tree.hypervisor_regions.as_slice(), [0x3800_0000..0x3900_0000, 0x4800_0000..0x1_0000_0000]);
        assert_eq!(tree.event_interrupt, Some(31));
        assert_eq!(tree.uart, Some(0x2200_0000));
        assert_eq!(
            tree.interrupt_controller,
            Some(InterruptController::GicV3 { distributor: 0x0300_1000, redistributor: 0x0302_0000 })
        );
    }

    #[test]
    fn a_tree_without_xen_says_so_and_garbage_is_refused() {
        let mut tree = Builder::new();
        tree.begin("").cells("#address-cells", &[2]).cells("#size-cells", &[2]);
        tree.begin("memory@0")
            .text("device_type", "memory")
            .cells("reg", &[0, 0, 0, 0x1000, 0xffff_ffff, 0xffff_f000, 0, 0x2000])
            .end();
        tree.end();
        let parsed = DeviceTree::parse(&tree.finish()).unwrap();
        assert_eq!(parsed.xen_compatible(), None);
        assert_eq!(parsed.command_line(), "");
        assert_eq!(parsed.memory.as_slice().to_vec(), vec![0u64..0x1000]);
        assert_eq!(parsed.memory.dropped(), 1, "a wrapping bank is dropped");
        assert_eq!(DeviceTree::parse(&[0u8; 64]).err(), Some(DeviceTreeError::NotADeviceTree));
        assert_eq!(DeviceTree::parse(&[1, 2, 3]).err(), Some(DeviceTreeError::NotADeviceTree));
    }
}
