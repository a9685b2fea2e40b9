//! The IDX format (MNIST, Fashion-MNIST; raw or gzip) and [`Dataset`], images with labels
//! ready for batching.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::tensor::Tensor;
use crate::error::Error;
use crate::rng::SplitMix64;

/// An IDX array of unsigned bytes: its dimensions and values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

fn format_error(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Format { message: format!("{}: {message}", path.display()) }
}

/// Maps a read error: truncation and bad compressed data are format errors.
fn read_error(path: &Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => format_error(path, "truncated file"),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => format_error(path, format!("corrupt data: {e}")),
        _ => Error::Io { message: format!("{}: {e}", path.display()) },
    }
}

/// Reads an IDX file of unsigned bytes (type code `0x08`), raw or gzip-compressed (detected
/// by its magic bytes, not its name). Wrong magic, an unsupported type, a truncated file or
/// trailing bytes after the data give an `Err`.
pub fn read_idx(path: impl AsRef<Path>) -> Result<Idx, Error> {
    let path = path.as_ref();
    let mut file = BufReader::new(
        File::open(path).map_err(|e| Error::Io { message: format!("cannot open {}: {e}", path.display()) })?,
    );
    let mut head = [0u8; 2];
    file.read_exact(&mut head).map_err(|e| read_error(path, e))?;
    let start = io::Cursor::new(head).chain(file);
    let mut reader: Box<dyn Read> =
        if head == [0x1f, 0x8b] { Box::new(GzDecoder::new(start)) } else { Box::new(start) };
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).map_err(|e| read_error(path, e))?;
    if magic[..2] != [0, 0] {
        return Err(format_error(path, format!("bad magic {magic:02x?}, expected 00 00 08 <ndim>")));
    }
    if magic[2] != 0x08 {
        return Err(format_error(path, format!("unsupported IDX type 0x{:02x} (only unsigned bytes, 0x08)", magic[2])));
    }
    let ndim = magic[3] as usize;
    if ndim == 0 {
        return Err(format_error(path, "zero dimensions"));
    }
    let mut dims = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        let mut d = [0u8; 4];
        reader.read_exact(&mut d).map_err(|e| read_error(path, e))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    let len = crate::spec::product("IDX size", &dims)?;
    // Reserve at most 64 MiB up front: a header may promise far more than the file holds,
    // and reading grows the buffer only as data actually arrives.
    let mut data = Vec::with_capacity(len.min(1 << 26));
    (&mut reader).take(len as u64).read_to_end(&mut data).map_err(|e| read_error(path, e))?;
    if data.len() != len {
        return Err(format_error(
            path,
            format!("truncated: header promises {len} bytes of data, file has {}", data.len()),
        ));
    }
    if reader.read(&mut [0u8; 1]).map_err(|e| read_error(path, e))? != 0 {
        return Err(format_error(path, format!("trailing bytes after the {len} bytes of data the header promises")));
    }
    Ok(Idx { dims, data })
}

/// Images `[n, 1, h, w]` with pixel values in `[0, 1]` and one class label each.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    images: Vec<f32>,
    labels: Vec<u8>,
    image: [usize; 2],
}

impl Dataset {
    /// Pairs an IDX image file (`[n, h, w]` bytes) with an IDX label file (`[n]`); `Err`
    /// if either is malformed or their counts disagree.
    pub fn from_idx(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self, Error> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        let img = read_idx(images)?;
        let lab = read_idx(labels)?;
        let [n, h, w] = img.dims[..] else {
            return Err(format_error(images, format!("images must have 3 dimensions, got {:?}", img.dims)));
        };
        let [count] = lab.dims[..] else {
            return Err(format_error(labels, format!("labels must have 1 dimension, got {:?}", lab.dims)));
        };
        if count != n {
            return Err(format_error(labels, format!("{count} labels for {n} images in {}", images.display())));
        }
        Ok(Dataset { images: img.data.iter().map(|&p| p as f32 / 255.0).collect(), labels: lab.data, image: [h, w] })
    }

    /// Loads the train or test split of a standard MNIST-format directory: files
    /// `train-images-idx3-ubyte` / `train-labels-idx1-ubyte` (or `t10k-…` for the test
    /// split), each optionally with a `.gz` suffix.
    pub fn mnist(dir: impl AsRef<Path>, train: bool) -> Result<Self, Error> {
        let prefix = if train { "train" } else { "t10k" };
        let find = |kind: &str| -> Result<PathBuf, Error> {
            let base = dir.as_ref().join(format!("{prefix}-{kind}"));
            let gz = base.with_file_name(format!("{prefix}-{kind}.gz"));
            [gz, base.clone()]
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| Error::Io { message: format!("{}(.gz) not found", base.display()) })
        };
        Dataset::from_idx(find("images-idx3-ubyte")?, find("labels-idx1-ubyte")?)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `[h, w]`.
    pub fn image_size(&self) -> [usize; 2] {
        self.image
    }

    /// The labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The first `n` images (all if fewer).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.image[0] * self.image[1]);
        self
    }

    /// The images at `indices` as a tensor `[indices.len(), 1, h, w]` and their labels;
    /// `Err` for an index out of range.
    pub fn batch(&self, indices: &[usize]) -> Result<(Tensor, Vec<usize>), Error> {
        let pixels = self.image[0] * self.image[1];
        let mut data = Vec::with_capacity(indices.len() * pixels);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            if i >= self.len() {
                return Err(Error::Shape {
                    message: format!("image index {i} out of range for a dataset of {}", self.len()),
                });
            }
            data.extend_from_slice(&self.images[i * pixels..(i + 1) * pixels]);
            labels.push(self.labels[i] as usize);
        }
        Ok((Tensor::new([indices.len(), 1, self.image[0], self.image[1]], data)?, labels))
    }

    /// The indices `0..len` shuffled by `rng`, cut into batches of `batch_size` (the last
    /// one possibly smaller), for one epoch.
    pub fn shuffled_batches(&self, batch_size: usize, rng: &mut SplitMix64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        rng.shuffle(&mut order);
        order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
    }
}
