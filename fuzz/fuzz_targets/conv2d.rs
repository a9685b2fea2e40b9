//! conv2d, conv2d_backward_input and conv2d_backward_weight on a spec and buffers decoded
//! from arbitrary bytes: every call must return Ok or Err (never crash, hang or allocate
//! without bound), agree with the reference, and be within the reference's error bound.
//! The decoding lives in `../decode.rs`, shared with `tests/ops_fuzz_corpus.rs`, which
//! replays `corpus/conv2d/` under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../decode.rs"]
mod decode;

fuzz_target!(|data: &[u8]| {
    decode::run(data);
});
