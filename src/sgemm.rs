//! A safe, bounds-checked view of `matrixmultiply::sgemm` over strided slices: the GEMM
//! behind the unfolded convolution driver and `nn::Linear`.

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// A mutable row-major matrix view with leading dimension `ld`.
pub(crate) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub ld: usize,
}

impl<'a> MatRef<'a> {
    /// Row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef { data, rows, cols, rs: cols, cs: 1 }
    }
    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    /// Whether every element index lies inside `data` (checked: a wrapped index fails).
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let row = (self.rows - 1).checked_mul(self.rs);
        let last = row.and_then(|r| (self.cols - 1).checked_mul(self.cs).and_then(|c| r.checked_add(c)));
        last.is_some_and(|i| i < self.data.len())
    }
}

impl<'a> MatMut<'a> {
    /// Row-major `rows x cols` matrix.
    pub fn rows(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatMut { data, rows, cols, ld: cols }
    }
}

/// `c = a * b + beta * c` (`beta` 0 overwrites `c`, ignoring its old contents, NaN included).
///
/// # Panics
/// If the shapes do not agree or a view reaches past its slice: callers derive all
/// shapes from one validated geometry, so this is an internal invariant, checked because
/// the `unsafe` call below relies on it.
pub(crate) fn gemm(a: MatRef, b: MatRef, beta: f32, c: MatMut) {
    assert!(a.rows == c.rows && b.cols == c.cols && a.cols == b.rows, "gemm shape mismatch");
    assert!(a.in_bounds() && b.in_bounds(), "gemm operand out of bounds");
    let c_end = (c.rows.max(1) - 1).checked_mul(c.ld).and_then(|r| r.checked_add(c.cols));
    assert!(c.rows == 0 || c.cols == 0 || c_end.is_some_and(|e| e <= c.data.len()), "gemm output out of bounds");
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    // SAFETY: the asserts above check that every element (i, j) that sgemm reads from `a`
    // (i < m, j < k), from `b` (i < k, j < n) and writes in `c` (i < m, j < n) lies inside
    // its slice (the index arithmetic checked, so nothing wrapped); a stride that is
    // multiplied by a nonzero index is then below the slice length, so it fits in isize
    // (sgemm never multiplies the stride of a length-1 dimension). `c` is a unique
    // borrow, so it does not alias `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            a.rows,
            a.cols,
            b.cols,
            1.0,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.ld as isize,
            1,
        );
    }
}
