//! The only place raw pointers from C become Rust references.
//!
//! Every exported function turns its pointer arguments into references
//! and slices here, first, and then works on safe Rust only. Each helper
//! checks what Rust can check (null, alignment, total size); what it
//! cannot check (that the memory is valid, initialized and not written by
//! someone else during the call) is the caller's side of the contract,
//! stated in `include/tessera.h`.

use core::mem::size_of;

use crate::status::{TESSERA_E_ARGUMENT, TESSERA_E_NULL};

/// Whether `ptr` may back a slice of `len` elements of `T`: not null
/// (even for `len == 0`), aligned, and at most `isize::MAX` bytes without wrapping
/// around the address space (the preconditions of
/// `core::slice::from_raw_parts` that can be checked).
pub(crate) fn check<T>(ptr: *const T, len: usize) -> Result<(), i32> {
    if ptr.is_null() {
        return Err(TESSERA_E_NULL);
    }
    if !ptr.is_aligned() {
        return Err(TESSERA_E_ARGUMENT);
    }
    let bytes = len.checked_mul(size_of::<T>()).ok_or(TESSERA_E_ARGUMENT)?;
    if isize::try_from(bytes).is_err() || (ptr as usize).checked_add(bytes).is_none() {
        return Err(TESSERA_E_ARGUMENT);
    }
    Ok(())
}

/// A C `(pointer, length)` input as a slice. A null pointer is refused,
/// also with length 0, so a forgotten argument is reported and not
/// mistaken for empty input.
///
/// # Errors
/// `TESSERA_E_NULL`, `TESSERA_E_ARGUMENT` (misaligned or oversized).
pub(crate) fn slice<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], i32> {
    check(ptr, len)?;
    #[allow(unsafe_code)]
    // SAFETY: `ptr` is non-null, aligned for `T` and `len` elements fit
    // in `isize::MAX` bytes without wrapping (checked above). The C caller
    // guarantees (tessera.h, "Pointers") that the memory holds `len`
    // initialized elements and is not modified during the call; the
    // returned lifetime does not outlive the call, since every exported
    // function drops these slices before it returns.
    let s = unsafe { core::slice::from_raw_parts(ptr, len) };
    Ok(s)
}

/// A C `(pointer, length)` output buffer as a mutable slice.
///
/// # Errors
/// `TESSERA_E_NULL`, `TESSERA_E_ARGUMENT` (misaligned or oversized).
pub(crate) fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> Result<&'a mut [T], i32> {
    check(ptr.cast_const(), len)?;
    #[allow(unsafe_code)]
    // SAFETY: as in `slice`; in addition the C caller guarantees the
    // buffer is writable and not accessed through any other pointer during
    // the call. Exported functions that also take inputs check with
    // `disjoint` that no input overlaps it, so no shared slice aliases it.
    let s = unsafe { core::slice::from_raw_parts_mut(ptr, len) };
    Ok(s)
}

/// A C pointer to one input object as a reference.
///
/// # Errors
/// `TESSERA_E_NULL`, `TESSERA_E_ARGUMENT` (misaligned).
pub(crate) fn reference<'a, T>(ptr: *const T) -> Result<&'a T, i32> {
    slice(ptr, 1)?.first().ok_or(TESSERA_E_NULL)
}

/// A C pointer to one output object as a mutable reference.
///
/// # Errors
/// `TESSERA_E_NULL`, `TESSERA_E_ARGUMENT` (misaligned).
pub(crate) fn reference_mut<'a, T>(ptr: *mut T) -> Result<&'a mut T, i32> {
    slice_mut(ptr, 1)?.first_mut().ok_or(TESSERA_E_NULL)
}

/// The address range `[start, end)` of `len` elements of `T` at `ptr`,
/// for overlap checks; computed on addresses only, never dereferenced.
pub(crate) fn span<T>(ptr: *const T, len: usize) -> (usize, usize) {
    let start = ptr as usize;
    let bytes = len.saturating_mul(size_of::<T>());
    (start, start.saturating_add(bytes))
}

/// Refuses an output buffer that overlaps any input: Rust must never hold
/// a shared and a mutable reference to the same bytes.
///
/// # Errors
/// `TESSERA_E_ARGUMENT`.
pub(crate) fn disjoint(output: (usize, usize), inputs: &[(usize, usize)]) -> Result<(), i32> {
    // Empty ranges overlap nothing.
    let overlaps = |(a0, a1): (usize, usize), (b0, b1): (usize, usize)| {
        a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1
    };
    if inputs.iter().any(|&input| overlaps(output, input)) {
        Err(TESSERA_E_ARGUMENT)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_is_refused_even_when_empty() {
        assert_eq!(slice::<u8>(core::ptr::null(), 0), Err(TESSERA_E_NULL));
        assert_eq!(slice::<u8>(core::ptr::null(), 5), Err(TESSERA_E_NULL));
        assert_eq!(
            slice_mut::<u8>(core::ptr::null_mut(), 1).map(|s| s.len()),
            Err(TESSERA_E_NULL)
        );
        assert_eq!(reference::<u32>(core::ptr::null()), Err(TESSERA_E_NULL));
    }

    #[test]
    fn empty_and_full_slices() {
        let data = [1u8, 2, 3];
        assert_eq!(slice(data.as_ptr(), 0), Ok(&[][..]));
        assert_eq!(slice(data.as_ptr(), 3), Ok(&data[..]));
    }

    #[test]
    fn misaligned_and_oversized_are_refused() {
        let data = [0u64; 2];
        let odd = data.as_ptr().cast::<u8>().wrapping_add(1).cast::<u64>();
        assert_eq!(slice(odd, 1), Err(TESSERA_E_ARGUMENT));
        assert_eq!(
            slice(data.as_ptr(), usize::MAX / 4),
            Err(TESSERA_E_ARGUMENT)
        );
    }

    #[test]
    fn overlap_detection() {
        let buf = [0u8; 16];
        let whole = span(buf.as_ptr(), 16);
        let head = span(buf.as_ptr(), 8);
        let tail = span(buf.as_ptr().wrapping_add(8), 8);
        assert_eq!(disjoint(head, &[tail]), Ok(()));
        assert_eq!(disjoint(whole, &[tail]), Err(TESSERA_E_ARGUMENT));
        assert_eq!(disjoint(head, &[(0, 0)]), Ok(()));
        let empty_inside = span(buf.as_ptr().wrapping_add(4), 0);
        assert_eq!(disjoint(whole, &[empty_inside]), Ok(()));
    }
}
