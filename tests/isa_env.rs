//! `SVERKA_ISA` end to end: the variable is read once per process, so each case runs this
//! test binary again as a child process with the variable set, and the child reports the
//! ISA that `Isa::active` and a default plan picked.

use std::process::Command;

use sverka::{Conv2dPlan, Conv2dSpec, Isa, Padding};

/// Run by the parent in a child process (ignored in a normal run): prints what the process
/// uses.
#[test]
#[ignore]
fn child_reports_active_isa() {
    let spec = Conv2dSpec {
        batch: 1,
        in_channels: 16,
        out_channels: 16,
        input: [8, 8],
        kernel: [3, 3],
        stride: [1, 1],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 1,
    };
    let plan = Conv2dPlan::new(&spec, &vec![0.0; spec.weight_len().unwrap()], None).unwrap();
    println!("ACTIVE={} PLAN={}", Isa::active(), plan.isa());
}

/// What a child process with `SVERKA_ISA=value` (unset if `None`) reports.
fn child(value: Option<&str>) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", "child_reports_active_isa", "--nocapture", "--test-threads=1"]);
    match value {
        Some(v) => cmd.env("SVERKA_ISA", v),
        None => cmd.env_remove("SVERKA_ISA"),
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    // The harness prints the test's name on the same line as its output.
    let at = stdout.find("ACTIVE=").unwrap_or_else(|| panic!("no report in {stdout}"));
    stdout[at..].lines().next().unwrap_or_default().trim().to_string()
}

#[test]
fn sverka_isa_lowers_never_raises() {
    let best = Isa::best();
    let report = |isa: Isa| format!("ACTIVE={isa} PLAN={isa}");
    assert_eq!(child(None), report(best));
    for isa in Isa::ALL {
        // Lowered to the requested level, or kept at the best the CPU has.
        assert_eq!(child(Some(isa.name())), report(isa.min(best)), "SVERKA_ISA={isa}");
    }
    assert_eq!(child(Some(" AVX2 ")), report(Isa::Avx2.min(best)));
    // An unknown value is ignored.
    assert_eq!(child(Some("sse9")), report(best));
}
