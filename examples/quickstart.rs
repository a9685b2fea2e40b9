//! A tour of sverka's functional API: a convolution, a transposed convolution, a max pool
//! and a batch norm on small tensors, each checked against the `reference` oracle.
//!
//! Run with `cargo run --release --example quickstart`.

use sverka::{BatchNorm2dSpec, Conv2dSpec, ConvTranspose2dSpec, Error, Padding, Pool2dSpec, reference};

/// Prints a `[channels, h, w]` tensor plane by plane.
fn show(name: &str, data: &[f32], [h, w]: [usize; 2]) {
    println!("{name}:");
    for (c, plane) in data.chunks(h * w).enumerate() {
        for (y, row) in plane.chunks(w).enumerate() {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:7.3}")).collect();
            println!("  {}{}", if y == 0 { format!("c{c} ") } else { "   ".into() }, cells.join(" "));
        }
    }
}

/// Largest absolute difference between two buffers.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn main() -> Result<(), Error> {
    // The 5x5 image and 3x3 kernel of the classic convolution exercise.
    let image = [0., 1., 2., 1., 0., 4., 1., 0., 1., 0., 2., 0., 1., 1., 1., 1., 2., 3., 1., 0., 0., 4., 3., 2., 0.];
    let kernel = [0., 1., 0., 1., 0., 1., 2., 1., 0.];
    show("input", &image, [5, 5]);

    let conv = Conv2dSpec {
        batch: 1,
        in_channels: 1,
        out_channels: 1,
        input: [5, 5],
        kernel: [3, 3],
        stride: [1, 1],
        padding: Padding::ZERO,
        dilation: [1, 1],
        groups: 1,
    };
    let mut y = vec![0.0; conv.output_len()?];
    sverka::conv2d(&conv, &image, &kernel, None, &mut y)?;
    show(&format!("conv2d 3x3 (PyTorch gives 9 5 4 / 8 8 10 / 8 15 12) -> {:?}", conv.output()?), &y, conv.output()?);

    // Transposed convolution back up: stride 2, output_padding 0 gives 5x5 again.
    let up = ConvTranspose2dSpec {
        batch: 1,
        in_channels: 1,
        out_channels: 2,
        input: conv.output()?,
        kernel: [3, 3],
        stride: [2, 2],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 1,
        output_padding: [0, 0],
    };
    let up_weight: Vec<f32> = (0..up.weight_len()?).map(|i| (i % 4) as f32 * 0.25).collect();
    let mut z = vec![0.0; up.output_len()?];
    sverka::conv_transpose2d(&up, &y, &up_weight, Some(&[0.0, 1.0]), &mut z)?;
    show(&format!("conv_transpose2d stride 2 -> {:?}", up.output()?), &z, up.output()?);

    // 2x2 max pool with ceil_mode on the 5x5 image: the last window hangs over the edge.
    let pool = Pool2dSpec {
        batch: 1,
        channels: 1,
        input: [5, 5],
        kernel: [2, 2],
        stride: [2, 2],
        padding: Padding::ZERO,
        dilation: [1, 1],
        ceil_mode: true,
        count_include_pad: false,
    };
    let mut pooled = vec![0.0; pool.output_len()?];
    let mut indices = vec![0u32; pooled.len()];
    sverka::max_pool2d(&pool, &image, &mut pooled, Some(&mut indices))?;
    show(&format!("max_pool2d 2x2 ceil_mode -> {:?}", pool.output()?), &pooled, pool.output()?);
    println!("  argmax indices: {indices:?}");

    // Batch norm in training mode over the two channels of `z`.
    let bn = BatchNorm2dSpec::new(1, 2, up.output()?);
    let (gamma, beta) = ([1.0, 2.0], [0.0, -1.0]);
    let (mut running_mean, mut running_var) = ([0.0; 2], [1.0; 2]);
    let (mut saved_mean, mut saved_invstd) = ([0.0; 2], [0.0; 2]);
    let mut normed = vec![0.0; z.len()];
    sverka::batch_norm2d_train(
        &bn,
        &z,
        &gamma,
        &beta,
        &mut running_mean,
        &mut running_var,
        &mut normed,
        &mut saved_mean,
        &mut saved_invstd,
    )?;
    show("batch_norm2d (train)", &normed, up.output()?);
    println!("  running_mean {running_mean:?} running_var {running_var:?}");

    // Every fast result agrees with the f64 reference.
    let mut oracle = vec![0.0; y.len()];
    reference::conv2d(&conv, &image, &kernel, None, &mut oracle)?;
    let mut oracle_z = vec![0.0; z.len()];
    reference::conv_transpose2d(&up, &y, &up_weight, Some(&[0.0, 1.0]), &mut oracle_z)?;
    println!(
        "max |fast - reference|: conv2d {:e}, conv_transpose2d {:e}",
        max_diff(&y, &oracle),
        max_diff(&z, &oracle_z)
    );
    Ok(())
}
