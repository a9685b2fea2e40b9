//! Checkpoints in the safetensors format with PyTorch `state_dict` names and layouts, so
//! weights move between sverka and PyTorch
//! (`model.load_state_dict(safetensors.torch.load_file(path))`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};

use super::layer::Layer;
use super::param::{StateMut, StateRef};
use crate::error::Error;

/// A state entry in little-endian bytes, as safetensors stores it.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

impl From<StateRef<'_>> for Bytes {
    fn from(state: StateRef<'_>) -> Self {
        match state {
            StateRef::F32 { shape, data } => {
                Bytes { dtype: Dtype::F32, shape, data: data.iter().flat_map(|v| v.to_le_bytes()).collect() }
            }
            StateRef::I64(v) => Bytes { dtype: Dtype::I64, shape: Vec::new(), data: v.to_le_bytes().to_vec() },
        }
    }
}

fn format_error(message: impl Into<String>) -> Error {
    Error::Format { message: message.into() }
}

/// The model's `state_dict` serialised as safetensors bytes.
pub fn to_bytes(model: &dyn Layer) -> Result<Vec<u8>, Error> {
    let tensors: Vec<(String, Bytes)> = model.state().into_iter().map(|(name, s)| (name, s.into())).collect();
    safetensors::serialize(tensors.iter().map(|(name, b)| (name.as_str(), b)), None)
        .map_err(|e| format_error(format!("cannot serialise checkpoint: {e}")))
}

/// Saves the model's `state_dict` to `path` atomically: the bytes go to a temporary file
/// next to it, which is flushed to disk and then renamed over `path`, so a crash never
/// leaves a half-written checkpoint.
pub fn save(model: &dyn Layer, path: impl AsRef<Path>) -> Result<(), Error> {
    let path = path.as_ref();
    let bytes = to_bytes(model)?;
    let file_name =
        path.file_name().ok_or_else(|| Error::Io { message: format!("{} is not a file path", path.display()) })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        // Best effort: the temporary file may not exist.
        let _ = fs::remove_file(&tmp);
        return Err(Error::Io { message: format!("cannot write {}: {e}", path.display()) });
    }
    Ok(())
}

/// Loads a `state_dict` from safetensors bytes into the model. Every entry of the model
/// must be present with the same dtype and shape, and the file must have no other
/// entries; otherwise nothing is changed and the `Err` names the offending tensors.
pub fn from_bytes(model: &mut dyn Layer, bytes: &[u8]) -> Result<(), Error> {
    let file =
        SafeTensors::deserialize(bytes).map_err(|e| format_error(format!("not a valid safetensors file: {e}")))?;
    let mut stored: HashMap<&str, _> = file.iter().collect();
    let mut state = model.state_mut();
    let mut problems = Vec::new();
    // Check everything before touching the model.
    for (name, entry) in &state {
        let Some(view) = stored.get(name.as_str()) else {
            problems.push(format!("missing tensor {name}"));
            continue;
        };
        let (dtype, shape): (Dtype, &[usize]) = match entry {
            StateMut::F32 { shape, .. } => (Dtype::F32, shape),
            StateMut::I64(_) => (Dtype::I64, &[]),
        };
        if view.dtype() != dtype || view.shape() != shape {
            problems.push(format!("{name} is {:?} {:?}, expected {dtype:?} {shape:?}", view.dtype(), view.shape()));
        }
    }
    for (name, _) in &state {
        stored.remove(name.as_str());
    }
    let mut extra: Vec<_> = stored.keys().collect();
    extra.sort();
    problems.extend(extra.into_iter().map(|name| format!("unexpected tensor {name}")));
    if !problems.is_empty() {
        return Err(format_error(format!("checkpoint does not match the model: {}", problems.join("; "))));
    }
    for (name, entry) in &mut state {
        let bytes = file.tensor(name).map_err(|e| format_error(e.to_string()))?.data();
        match entry {
            StateMut::F32 { data, .. } => {
                for (v, b) in data.iter_mut().zip(bytes.chunks_exact(4)) {
                    *v = f32::from_le_bytes(b.try_into().expect("chunks of 4"));
                }
            }
            StateMut::I64(v) => {
                **v =
                    i64::from_le_bytes(bytes.try_into().map_err(|_| format_error(format!("{name}: bad int64 length")))?)
            }
        }
    }
    Ok(())
}

/// Loads a checkpoint written by [`save`] (or by `safetensors.torch.save_file` from a
/// PyTorch `state_dict` of the same architecture) into the model; see [`from_bytes`].
pub fn load(model: &mut dyn Layer, path: impl AsRef<Path>) -> Result<(), Error> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Error::Io { message: format!("cannot read {}: {e}", path.display()) })?;
    from_bytes(model, &bytes)
}
