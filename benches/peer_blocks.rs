//! The sverka side of `scripts/vs_peers.py`, which times sverka and the peers (PyTorch,
//! ONNX Runtime) in alternating blocks of a fraction of a second, so that both see the
//! same machine: this shared machine's speed drifts by 10–30% within minutes, more than
//! the differences being measured.
//!
//! `cargo bench --bench peer_blocks -- S4` plans shape S4 of DESIGN §5 (same data as
//! `benches/conv2d.rs`; the kernel or algorithm
//! forced by `SVERKA_BENCH_KERNEL` / `SVERKA_BENCH_ALGORITHM` if set), prints `READY <plan>` (its one-thread plan), then reads lines
//! `<threads> <seconds>` from stdin: for each it calls `Conv2dPlan::run` in a pool of
//! that many threads (planned there on first use) for at least that long and prints the
//! mean milliseconds a call.

mod common;

use std::io::BufRead;
use std::time::Instant;

use common::{SHAPES, conv_data, env_builder, pool, shape_spec};

fn main() {
    // `cargo bench` with no filter runs every bench binary: without a shape, nothing to do.
    let id = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let Some((_, shape)) = SHAPES.iter().find(|(name, _)| Some(*name) == id.as_deref()) else {
        println!("peer_blocks: no shape id given (e.g. `-- S4`); see scripts/vs_peers.py");
        return;
    };
    let s = shape_spec(*shape);
    let (x, w, b) = conv_data(&s);
    let mut y = vec![0.0; s.output_len().unwrap()];
    // A plan per thread count, each built in its own pool (it sizes its scratch for it).
    let plan_in = |threads: usize| {
        let pool = pool(threads);
        let plan = pool.install(|| env_builder(&s).build(&w, Some(&b))).expect("plan");
        (pool, plan)
    };
    let mut plans = vec![plan_in(1)];
    println!("READY {}", plans[0].1);
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let mut words = line.split_whitespace();
        let (Some(threads), Some(secs)) = (words.next(), words.next()) else { break };
        let (threads, secs): (usize, f64) = (threads.parse().expect("threads"), secs.parse().expect("seconds"));
        let threads = threads.max(1);
        while plans.len() < threads {
            plans.push(plan_in(plans.len() + 1));
        }
        let (pool, plan) = &mut plans[threads - 1];
        let ms = pool.install(|| {
            let (start, mut calls) = (Instant::now(), 0u32);
            while calls == 0 || start.elapsed().as_secs_f64() < secs {
                plan.run(&x, &mut y).expect("run");
                calls += 1;
            }
            start.elapsed().as_secs_f64() * 1e3 / f64::from(calls)
        });
        println!("{ms:.5}");
    }
}
