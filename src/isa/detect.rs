//! Run-time ISA detection, done once and cached.

use std::fmt;
use std::sync::OnceLock;

/// An instruction-set level, ordered from the most portable to the widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// `wide::f32x8`, any CPU.
    Portable,
    /// x86-64 AVX2 + FMA, 8 lanes.
    Avx2,
    /// x86-64 AVX-512F, 16 lanes.
    Avx512,
}

impl Isa {
    /// Every level, most portable first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The level's name as `SVERKA_ISA` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// `f32` lanes of the level's vectors.
    pub const fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 | Isa::Portable => 8,
        }
    }

    /// Parses a `SVERKA_ISA` value.
    pub fn parse(s: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether this CPU can run the level (checked with `cpuid`, not cached).
    pub fn supports(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best level this CPU supports.
    pub fn best() -> Isa {
        Isa::ALL.into_iter().rev().find(|i| i.supports()).unwrap_or(Isa::Portable)
    }

    /// The level sverka uses: [`Isa::best`], lowered to `SVERKA_ISA` when that variable
    /// names a lower level (a higher or unknown value is ignored). Decided on first call
    /// and cached for the life of the process.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let best = Isa::best();
            std::env::var("SVERKA_ISA").ok().and_then(|v| Isa::parse(&v)).map_or(best, |forced| forced.min(best))
        })
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-core data cache sizes in bytes `(L1d, L2)`, read once from Linux sysfs
/// (`/sys/devices/system/cpu/cpu0/cache/index*/`); 32 KiB / 1 MiB where unavailable.
pub(crate) fn cache_sizes() -> (usize, usize) {
    static SIZES: OnceLock<(usize, usize)> = OnceLock::new();
    *SIZES.get_or_init(|| {
        let (mut l1, mut l2) = (32 << 10, 1 << 20);
        for i in 0..8 {
            let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
            let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
            let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size")) else {
                continue;
            };
            let size = size.trim();
            let bytes = match size.strip_suffix('K') {
                Some(k) => k.parse::<usize>().ok().map(|k| k << 10),
                None => size.strip_suffix('M').and_then(|m| m.parse::<usize>().ok()).map(|m| m << 20),
            };
            match (level.trim(), kind.trim(), bytes) {
                ("1", "Data", Some(b)) => l1 = b,
                ("2", _, Some(b)) => l2 = b,
                _ => {}
            }
        }
        (l1, l2)
    })
}
