//! Replays the conv2d fuzz corpus (`fuzz/corpus/conv2d/`) through the fuzz target's own
//! decoding and checks (`fuzz/decode.rs`), so every input the fuzzer ever crashed on,
//! once added there, stays a regression test under plain `cargo test`. Also runs the
//! same checks on a few hundred random byte strings.

#[path = "../fuzz/decode.rs"]
mod decode;

use proptest::prelude::*;

#[test]
fn replay_conv2d_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/conv2d");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "seed corpus has only {} files", files.len());
    let (mut invalid, mut too_large, mut wrong, mut computed) = (0, 0, 0, 0);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let outcome = std::panic::catch_unwind(|| decode::run(&bytes))
            .unwrap_or_else(|_| panic!("corpus file {} failed (see the panic above)", f.display()));
        match outcome {
            decode::Outcome::InvalidSpec(_) => invalid += 1,
            decode::Outcome::TooLarge => too_large += 1,
            decode::Outcome::WrongLength(_) => wrong += 1,
            decode::Outcome::Computed => computed += 1,
        }
    }
    // The seeds must exercise every path of the harness.
    assert!(
        invalid > 0 && too_large > 0 && wrong > 0 && computed > 0,
        "corpus coverage: invalid {invalid}, too large {too_large}, wrong length {wrong}, computed {computed}"
    );
}

/// A few seeds decode to exactly what they are named for.
#[test]
fn seed_decoding() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/conv2d");
    let run = |name: &str| decode::run(&std::fs::read(dir.join(name)).unwrap());
    assert_eq!(run("dense_3x3_pad1"), decode::Outcome::Computed);
    assert_eq!(run("wrong_weight_short"), decode::Outcome::WrongLength("weight"));
    assert_eq!(run("zero_stride"), decode::Outcome::InvalidSpec(sverka::Error::Zero { param: "stride[0]" }));
    assert!(matches!(run("overflow_batch"), decode::Outcome::InvalidSpec(sverka::Error::Overflow { .. })));
    assert_eq!(run("too_large_kernel_in_padding"), decode::Outcome::TooLarge);
    let case = decode::decode(&std::fs::read(dir.join("depthwise_s2_d2_asym")).unwrap());
    assert_eq!(case.spec.to_string(), "n1ic4oc8ih7iw7kh3kw3sh2sw2p1_0_2_1dh2dw2g4");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random bytes: whatever they decode to, the checks of the fuzz target hold.
    #[test]
    fn random_bytes(data in prop::collection::vec(any::<u8>(), 0..40)) {
        decode::run(&data);
    }
}
