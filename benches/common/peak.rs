//! The machine's f32 FMA peak, measured once per bench run: independent FMA chains on
//! the widest vectors the CPU has (AVX-512, else AVX2+FMA, else a scalar estimate), on
//! 1 thread and on `n` threads at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Independent accumulator chains: enough to cover FMA latency (4 cycles) x 2 ports.
const CHAINS: usize = 12;
/// FMAs per chain per measurement.
const ITERS: u64 = 20_000_000;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{CHAINS, ITERS};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512() -> f32 {
        let mut acc = [_mm512_set1_ps(0.0); CHAINS];
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2() -> f32 {
        let mut acc = [_mm256_set1_ps(0.0); CHAINS];
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        acc.iter()
            .map(|&v| {
                let mut out = [0f32; 8];
                // SAFETY: `out` holds exactly the 8 f32 an unaligned 256-bit store writes.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
                out.iter().sum::<f32>()
            })
            .sum()
    }
}

/// Lanes of the widest FMA available, and one run of the probe on it.
fn probe() -> (usize, fn() -> f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F support was just detected.
            return (16, || unsafe { x86::avx512() });
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA support were just detected.
            return (8, || unsafe { x86::avx2() });
        }
    }
    (1, || {
        let mut acc = [0f32; CHAINS];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = v.mul_add(0.999_999, 1e-7);
            }
        }
        acc.iter().sum()
    })
}

/// Peak GFLOP/s of `threads` threads running the probe at once (best of 3), cached.
pub fn gflops(threads: usize) -> f64 {
    static CACHE: Mutex<Option<HashMap<usize, f64>>> = Mutex::new(None);
    let mut cache = CACHE.lock().expect("peak cache");
    *cache.get_or_insert_with(HashMap::new).entry(threads).or_insert_with(|| {
        let (lanes, run) = probe();
        let best = (0..3)
            .map(|_| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| std::hint::black_box(run()));
                    }
                });
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        let flops = (2 * lanes * CHAINS) as f64 * ITERS as f64 * threads as f64;
        let gflops = flops / best / 1e9;
        println!("PEAK threads={threads} {lanes} lanes: {gflops:.1} GFLOP/s");
        gflops
    })
}
