//! The microkernel generator, run by `build.rs`.
//!
//! It renders, as plain Rust generic over `crate::isa::Simd`, every register-blocked
//! microkernel of the table below, one `#[target_feature]` `#[inline(never)]` entry point
//! per (kernel × ISA whose register file holds its tile), and the registry that dispatch,
//! tests and benches expand: the `KERNELS` metadata table, the per-family entry tables and
//! the `for_each_kernel!` macro.
//!
//! Kernel names parse back into their parameters: `<family>_<geometry>_<tile>`, e.g.
//! `direct_k3x3s1_ow14_oc2v` (direct convolution, 3x3 kernel, stride 1, a tile of 14
//! output pixels × 2 vectors of output channels) or `gemm_m8_n3v` (GEMM, 8 rows × 3 vectors
//! of columns). `v` counts vectors, so a name means the same tile on every ISA.
//!
//! Output is deterministic: the tables are fixed arrays walked in order, nothing depends on
//! the host or the environment.

/// The kernel geometry a direct kernel is specialised for.
#[derive(Clone, Copy)]
enum Taps {
    /// 3x3 kernel: the 9 tap offsets are unrolled.
    K3x3,
    /// Any kernel size: a run-time loop over the tap-offset list.
    Any,
}

/// ISA levels, in the order of `Isa::ALL` (`portable`, `avx2`, `avx512`), with the names
/// of their token types and the `target_feature` string of their entry points.
const ISAS: [(&str, &str, Option<&str>); 3] =
    [("portable", "Portable", None), ("avx2", "Avx2", Some("avx2,fma")), ("avx512", "Avx512", Some("avx512f"))];

/// Direct-convolution tiles `(ow, ocv, isas)`: `ow` output pixels × `ocv` vectors of output
/// channels. The ISA mask (bit i = `ISAS[i]`) keeps a tile to the register files that hold
/// its `ow * ocv` accumulators plus `ocv` weight vectors and one broadcast: at most 31 of 32
/// zmm registers for the AVX-512 tiles, 15 of 16 for the 8-lane tiles. (An `ow7 x oc4v`
/// AVX-512 tile was measured and dropped: 10% slower than `ow14 x oc2v` on 3x3 and 2.7x
/// slower on 5x5, its 4 weight vectors per step overflowing L1.)
const DIRECT_TILES: [(usize, usize, u8); 4] = [(14, 2, 0b100), (8, 2, 0b100), (6, 2, 0b011), (3, 4, 0b011)];

/// Direct-convolution geometries `(taps, stride, planar)`. Planar (`c1`) kernels read an
/// input block of one channel (a zero-padded NCHW plane, no reorder); the others a block
/// of `L` channels interleaved per pixel.
const DIRECT_GEOMS: [(Taps, usize, bool); 6] = [
    (Taps::K3x3, 1, false),
    (Taps::K3x3, 2, false),
    (Taps::Any, 1, false),
    (Taps::Any, 2, false),
    (Taps::Any, 1, true),
    (Taps::Any, 2, true),
];

/// GEMM tiles `(mr, nrv, isas)`: `mr` rows (output channels) × `nrv` vectors of columns
/// (pixels); same register budget as the direct tiles. Each also gets its tails, the
/// `mr x v` tiles for `v < nrv` on the same ISAs: the drivers run a plane's last partial
/// panel on the narrowest tile that covers it (S5: 784 pixels = 16 panels of 48 and one
/// of 16, computed at a third of the cost) and never pick a tail tile for a whole GEMM.
const GEMM_TILES: [(usize, usize, u8); 4] = [(8, 3, 0b100), (6, 4, 0b100), (6, 2, 0b011), (4, 3, 0b011)];

/// Indirect GEMM tiles `(mr, nrv, isas)`: B row `k` at `b + offsets[k]` (rows of one output
/// row's pixels in the padded input planes). 2 vectors wide so that an output row is
/// covered with little padding. (`m16 x n1v` was measured and dropped: 17 loads per 16
/// FMAs, S8 2.3-2.6 ms against 2.05 ms for `m8 x n2v`.)
const INDIRECT_TILES: [(usize, usize, u8); 2] = [(8, 2, 0b100), (6, 2, 0b011)];

/// A small indenting writer.
struct Out {
    text: String,
    indent: usize,
}

impl Out {
    fn line(&mut self, s: &str) {
        if s.starts_with('}') || s.starts_with(')') || s.starts_with(']') {
            self.indent -= 1;
        }
        if !s.is_empty() {
            for _ in 0..self.indent {
                self.text.push_str("    ");
            }
        }
        self.text.push_str(s);
        self.text.push('\n');
        if s.ends_with('{') || s.ends_with('(') || s.ends_with('[') {
            self.indent += 1;
        }
    }
}

/// One generated kernel, as the registry lists it.
struct Kernel {
    name: String,
    family: &'static str,
    /// Kernel `[kh, kw]` it is specialised for (`[0, 0]` = any).
    kernel: [usize; 2],
    stride: usize,
    /// Tile rows: output pixels (direct) or `mr` (gemm).
    rows: usize,
    /// Tile vectors: output-channel vectors (direct) or column vectors (gemm).
    vectors: usize,
    isas: u8,
    /// Direct kernel on one-channel input blocks (`c1`).
    planar: bool,
    /// GEMM kernel reading B rows through an offset table (`_ind`).
    indirect: bool,
    /// The ISAs (a subset of `isas`) on which the kernel only serves as a tail of a wider
    /// GEMM tile.
    tail_isas: u8,
}

/// Renders the whole generated file.
pub fn generate() -> String {
    let mut kernels = Vec::new();
    for (taps, stride, planar) in DIRECT_GEOMS {
        for (ow, ocv, isas) in DIRECT_TILES {
            let geom = match taps {
                Taps::K3x3 => format!("k3x3s{stride}"),
                Taps::Any => format!("kanys{stride}"),
            };
            let geom = if planar { format!("c1_{geom}") } else { geom };
            let kernel = match taps {
                Taps::K3x3 => [3, 3],
                Taps::Any => [0, 0],
            };
            kernels.push((
                Kernel {
                    name: format!("direct_{geom}_ow{ow}_oc{ocv}v"),
                    family: "Direct",
                    kernel,
                    stride,
                    rows: ow,
                    vectors: ocv,
                    isas,
                    planar,
                    indirect: false,
                    tail_isas: 0,
                },
                Some(taps),
            ));
        }
    }
    for (mr, nrv, isas, indirect) in gemm_tiles() {
        kernels.push((
            Kernel {
                name: format!("gemm_m{mr}_n{nrv}v{}", if indirect { "_ind" } else { "" }),
                family: "Gemm",
                kernel: [0, 0],
                stride: 0,
                rows: mr,
                vectors: nrv,
                isas: isas.main | isas.tail,
                planar: false,
                indirect,
                tail_isas: isas.tail & !isas.main,
            },
            None,
        ));
    }

    let mut o = Out { text: String::new(), indent: 0 };
    o.line("// @generated by codegen/mod.rs (run from build.rs) -- do not edit.");
    o.line("//");
    o.line("// Parameters:");
    for (ow, ocv, isas) in DIRECT_TILES {
        o.line(&format!("//   direct tile ow{ow} x oc{ocv}v, isas {}", isa_list(isas)));
    }
    o.line("//   direct geometries: k3x3s1, k3x3s2 (taps unrolled), kanys1, kanys2 (tap loop),");
    o.line("//   c1_kanys1, c1_kanys2 (tap loop, one-channel input blocks)");
    for (mr, nrv, isas) in GEMM_TILES {
        o.line(&format!("//   gemm tile m{mr} x n{nrv}v and its tails m{mr} x n1v.., isas {}", isa_list(isas)));
    }
    for (mr, nrv, isas) in INDIRECT_TILES {
        o.line(&format!("//   indirect gemm tile m{mr} x n{nrv}v, isas {}", isa_list(isas)));
    }
    o.line("");
    for (k, taps) in &kernels {
        match taps {
            Some(t) => direct_kernel(&mut o, k, *t),
            None => gemm_kernel(&mut o, k),
        }
        entries(&mut o, k);
    }
    registry(&mut o, &kernels.iter().map(|(k, _)| k).collect::<Vec<_>>());
    o.text
}

/// The ISAs of a GEMM tile: where it is a main tile, where a tail of a wider one.
#[derive(Clone, Copy, Default)]
struct TileIsas {
    main: u8,
    tail: u8,
}

/// Every GEMM tile `(mr, nrv, isas, indirect)`: the main tiles of `GEMM_TILES` in table
/// order (so the planner's ties between them break as in the table), then their tails
/// (merged into a main tile of the same shape on other ISAs: `m6 x n2v` is a main tile on
/// AVX2 and a tail of `m6 x n4v` on AVX-512), then the indirect tiles.
fn gemm_tiles() -> Vec<(usize, usize, TileIsas, bool)> {
    let mut tiles: Vec<(usize, usize, TileIsas, bool)> = Vec::new();
    let mut add = |mr: usize, nrv: usize, main: u8, tail: u8| match tiles.iter_mut().find(|t| (t.0, t.1) == (mr, nrv)) {
        Some(t) => {
            t.2.main |= main;
            t.2.tail |= tail;
        }
        None => tiles.push((mr, nrv, TileIsas { main, tail }, false)),
    };
    for (mr, nrv, isas) in GEMM_TILES {
        add(mr, nrv, isas, 0);
    }
    for (mr, nrv, isas) in GEMM_TILES {
        for v in 1..nrv {
            add(mr, v, 0, isas);
        }
    }
    tiles.extend(INDIRECT_TILES.iter().map(|&(mr, nrv, main)| (mr, nrv, TileIsas { main, tail: 0 }, true)));
    tiles
}

fn isa_list(mask: u8) -> String {
    ISAS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, isa)| isa.0).collect::<Vec<_>>().join(", ")
}

/// The pointer expression `ptr + k * unit`, without the `0 *` / `1 *` clippy dislikes.
fn at(ptr: &str, k: usize, unit: &str) -> String {
    match (k, unit) {
        (0, _) => ptr.to_string(),
        (1, u) => format!("{ptr}.add({u})"),
        (k, "1") => format!("{ptr}.add({k})"),
        (k, u) => format!("{ptr}.add({k} * {u})"),
    }
}

/// Accumulator variable of tile row `r`, vector `v`.
fn acc(r: usize, v: usize) -> String {
    format!("c{r}_{v}")
}

/// A direct-convolution kernel; contract in `src/kernels/mod.rs` (`DirectArgs`).
fn direct_kernel(o: &mut Out, k: &Kernel, taps: Taps) {
    let (ow, ocv, s) = (k.rows, k.vectors, k.stride);
    o.line(&format!(
        "/// Direct convolution, {} kernel, stride {s}, input blocks of {}: {ow} output pixels x {ocv} vectors of output channels.",
        match taps {
            Taps::K3x3 => "3x3",
            Taps::Any => "any",
        },
        if k.planar { "one channel" } else { "`L` channels" }
    ));
    o.line("///");
    o.line("/// # Safety");
    o.line("/// The CPU supports `S`; `a` satisfies the contract of [`DirectArgs`].");
    x86_only(o, k);
    o.line("#[inline(always)]");
    o.line(&format!("unsafe fn {}<S: Simd>(a: &DirectArgs) {{", k.name));
    o.line("let l = S::LANES;");
    o.line("// SAFETY: every pointer offset below stays inside the buffers `DirectArgs` promises:");
    let unit = if k.planar { "" } else { " x lanes" };
    o.line(&format!("// input reads at tap + {ow} pixels x stride {s}{unit}, packed weights of `icb` blocks,"));
    o.line(&format!("// `{ocv}` bias vectors and a {ow} x {ocv} vector output tile."));
    o.line("unsafe {");
    for v in 0..ocv {
        o.line(&format!("let b{v} = S::load({});", at("a.bias", v, "l")));
    }
    for r in 0..ow {
        let vars: Vec<String> = (0..ocv).map(|v| format!("mut {}", acc(r, v))).collect();
        let loads: Vec<String> = (0..ocv).map(|v| format!("S::load({})", at("a.out", r * ocv + v, "l"))).collect();
        let vals: Vec<String> = (0..ocv).map(|v| format!("b{v}")).collect();
        o.line(&format!(
            "let ({}) = if a.accumulate {{ ({}) }} else {{ ({}) }};",
            vars.join(", "),
            loads.join(", "),
            vals.join(", ")
        ));
    }
    o.line("let mut x = a.x;");
    o.line("let mut w = a.w;");
    o.line("for _ in 0..a.icb {");
    match taps {
        Taps::K3x3 => {
            for t in 0..9 {
                o.line(&format!("let xt = x.add(*a.taps.add({t}));"));
                direct_lanes(o, ow, ocv, s);
            }
        }
        Taps::Any => {
            o.line("for t in 0..a.ntaps {");
            o.line("let xt = x.add(*a.taps.add(t));");
            if k.planar {
                direct_pixels(o, ow, ocv, s);
            } else {
                direct_lanes(o, ow, ocv, s);
            }
            o.line("}");
        }
    }
    // Wrapping: after the last block this points past the input (never read).
    o.line("x = x.wrapping_add(a.icb_stride);");
    o.line("}");
    o.line("if a.relu {");
    o.line("let z = S::zero();");
    for r in 0..ow {
        for v in 0..ocv {
            o.line(&format!("{0} = S::max({0}, z);", acc(r, v)));
        }
    }
    o.line("}");
    for r in 0..ow {
        for v in 0..ocv {
            o.line(&format!("S::store({}, {});", at("a.out", r * ocv + v, "l"), acc(r, v)));
        }
    }
    o.line("}");
    o.line("}");
    o.line("");
}

/// Tiles without a portable entry exist only on x86-64: their generic body is compiled
/// only there (elsewhere it would be dead code).
fn x86_only(o: &mut Out, k: &Kernel) {
    if k.isas & 1 == 0 {
        o.line("#[cfg(target_arch = \"x86_64\")]");
    }
}

/// The lane loop of one tap: every input channel of the block, broadcast per pixel.
fn direct_lanes(o: &mut Out, ow: usize, ocv: usize, s: usize) {
    // Two lanes per iteration (LANES is even on every ISA): half the loop overhead.
    o.line("for lane in (0..l).step_by(2) {");
    for u in 0..2 {
        let lane = if u == 0 { "lane".to_string() } else { "lane + 1".to_string() };
        for v in 0..ocv {
            o.line(&format!("let w{v} = S::load({});", at("w", u * ocv + v, "l")));
        }
        for r in 0..ow {
            let pixel = match r * s {
                0 => lane.clone(),
                1 => format!("l + {lane}"),
                k => format!("{k} * l + {lane}"),
            };
            o.line(&format!("let p = S::broadcast(xt.add({pixel}));"));
            for v in 0..ocv {
                o.line(&format!("{0} = S::fma(p, w{v}, {0});", acc(r, v)));
            }
        }
    }
    o.line(&format!("w = {};", at("w", 2 * ocv, "l")));
    o.line("}");
}

/// One tap of a planar kernel: the block's single channel, broadcast per pixel (pixels
/// `stride` floats apart).
fn direct_pixels(o: &mut Out, ow: usize, ocv: usize, s: usize) {
    for v in 0..ocv {
        o.line(&format!("let w{v} = S::load({});", at("w", v, "l")));
    }
    for r in 0..ow {
        o.line(&format!("let p = S::broadcast({});", at("xt", r * s, "1")));
        for v in 0..ocv {
            o.line(&format!("{0} = S::fma(p, w{v}, {0});", acc(r, v)));
        }
    }
    o.line(&format!("w = {};", at("w", ocv, "l")));
}

/// A GEMM microkernel; contract in `src/kernels/mod.rs` (`GemmArgs`).
fn gemm_kernel(o: &mut Out, k: &Kernel) {
    let (mr, nrv) = (k.rows, k.vectors);
    o.line(&format!(
        "/// GEMM microkernel: C[{mr} x {nrv} vectors] (+)= A[{mr} x k] * B[k x {nrv} vectors]{}.",
        if k.indirect { ", B rows through `boffs`" } else { "" }
    ));
    o.line("///");
    o.line("/// # Safety");
    o.line("/// The CPU supports `S`; `g` satisfies the contract of [`GemmArgs`].");
    x86_only(o, k);
    o.line("#[inline(always)]");
    o.line(&format!("unsafe fn {}<S: Simd>(g: &GemmArgs) {{", k.name));
    if nrv > 1 {
        o.line("let l = S::LANES;");
    }
    let rows = if k.indirect { "at `b + boffs[k]`" } else { "`ldb` apart" };
    o.line(&format!("// SAFETY: `GemmArgs` promises k x {mr} packed A floats, k rows of {nrv} vectors of B"));
    o.line(&format!("// {rows}, {mr} bias floats, and a C tile of `m` rows x `n` columns `ldc` apart."));
    o.line("unsafe {");
    for m in 0..mr {
        let vars: Vec<String> = (0..nrv).map(|v| acc(m, v)).collect();
        o.line(&format!(
            "let [{}] = if g.load_c && {m} < g.m {{ load_row::<S, {nrv}>({}, g.n) }} else {{ [S::broadcast({}); {nrv}] }};",
            vars.iter().map(|v| format!("mut {v}")).collect::<Vec<_>>().join(", "),
            at("g.c", m, "g.ldc"),
            at("g.bias", m, "1"),
        ));
    }
    o.line("let mut pa = g.a;");
    if k.indirect {
        o.line("for kk in 0..g.k {");
        o.line("let pb = g.b.add(*g.boffs.add(kk));");
    } else {
        o.line("let mut pb = g.b;");
        o.line("for _ in 0..g.k {");
    }
    for v in 0..nrv {
        o.line(&format!("let b{v} = S::load({});", at("pb", v, "l")));
    }
    for m in 0..mr {
        o.line(&format!("let a{m} = S::broadcast({});", at("pa", m, "1")));
        for v in 0..nrv {
            o.line(&format!("{0} = S::fma(a{m}, b{v}, {0});", acc(m, v)));
        }
    }
    o.line(&format!("pa = pa.add({mr});"));
    if !k.indirect {
        // Wrapping: after the last row this points past B (never read).
        o.line("pb = pb.wrapping_add(g.ldb);");
    }
    o.line("}");
    for m in 0..mr {
        let vars: Vec<String> = (0..nrv).map(|v| acc(m, v)).collect();
        o.line(&format!("if {m} < g.m {{"));
        o.line(&format!("store_row::<S, {nrv}>({}, [{}], g.n, g.relu);", at("g.c", m, "g.ldc"), vars.join(", ")));
        o.line("}");
    }
    o.line("}");
    o.line("}");
    o.line("");
}

/// The per-ISA entry points of one kernel.
fn entries(o: &mut Out, k: &Kernel) {
    let args = if k.family == "Direct" { "a: &DirectArgs" } else { "a: &GemmArgs" };
    for (i, (isa, token, feature)) in ISAS.iter().enumerate() {
        if k.isas & (1 << i) == 0 {
            continue;
        }
        o.line(&format!("/// [`{}`] compiled for {isa}.", k.name));
        o.line("///");
        o.line("/// # Safety");
        o.line(&format!("/// The CPU supports {isa}; the arguments satisfy the kernel's contract."));
        if let Some(f) = feature {
            o.line("#[cfg(target_arch = \"x86_64\")]");
            o.line(&format!("#[target_feature(enable = \"{f}\")]"));
        }
        o.line("#[inline(never)]");
        o.line("#[allow(non_snake_case)]");
        o.line(&format!("unsafe fn {}__{isa}({args}) {{", k.name));
        o.line("// SAFETY: forwarded from this function's contract.");
        o.line(&format!("unsafe {{ {}::<{token}>(a) }}", k.name));
        o.line("}");
        o.line("");
    }
}

/// The registry: metadata table, per-family entry tables and `for_each_kernel!`.
fn registry(o: &mut Out, kernels: &[&Kernel]) {
    o.line("/// Every generated kernel, in registry order.");
    o.line(&format!("pub static KERNELS: [KernelInfo; {}] = [", kernels.len()));
    for k in kernels {
        o.line(&format!(
            "KernelInfo {{ name: \"{}\", family: Family::{}, kernel: [{}, {}], stride: {}, rows: {}, vectors: {}, planar: {}, indirect: {}, isas: {}, tail_isas: {} }},",
            k.name, k.family, k.kernel[0], k.kernel[1], k.stride, k.rows, k.vectors, k.planar, k.indirect, k.isas, k.tail_isas
        ));
    }
    o.line("];");
    o.line("");
    for (family, ty) in [("Direct", "DirectFn"), ("Gemm", "GemmFn")] {
        let list: Vec<(usize, &&Kernel)> = kernels.iter().enumerate().filter(|(_, k)| k.family == family).collect();
        o.line(&format!(
            "/// Entry points of the {} kernels: `(index in KERNELS, [portable, avx2, avx512])`.",
            family.to_lowercase()
        ));
        o.line(&format!(
            "pub(crate) static {}_ENTRIES: [(usize, [Option<{ty}>; 3]); {}] = [",
            family.to_uppercase(),
            list.len()
        ));
        for (i, k) in list {
            let fns: Vec<String> = ISAS
                .iter()
                .enumerate()
                .map(|(j, (isa, _, feature))| {
                    if k.isas & (1 << j) == 0 {
                        "None".to_string()
                    } else if feature.is_some() {
                        format!("x86_entry!({}__{isa})", k.name)
                    } else {
                        format!("Some({}__{isa} as {ty})", k.name)
                    }
                })
                .collect();
            o.line(&format!("({i}, [{}]),", fns.join(", ")));
        }
        o.line("];");
        o.line("");
    }
    o.line("/// Calls `$m!(name, family, [kh, kw], stride, rows, vectors)` once per generated kernel");
    o.line("/// (`[0, 0]` = any kernel size, stride 0 = not a convolution kernel).");
    o.line("#[macro_export]");
    o.line("macro_rules! for_each_kernel {");
    o.line("($m:ident) => {");
    for k in kernels {
        o.line(&format!(
            "$m!({}, {}, [{}, {}], {}, {}, {});",
            k.name,
            k.family.to_lowercase(),
            k.kernel[0],
            k.kernel[1],
            k.stride,
            k.rows,
            k.vectors
        ));
    }
    o.line("};");
    o.line("}");
}
