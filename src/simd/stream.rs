//! Streaming (non-temporal) stores for the AVX2 level, through a staging buffer.
//!
//! An output far larger than the last-level cache is cheaper to write with non-temporal stores:
//! the CPU does not read each output line before overwriting it (no read-for-ownership), which
//! removes a quarter of the memory traffic of `a + b`. The AVX-512 kernels (`avx512.rs`) store
//! their vectors that way directly. The AVX2 kernels are compiled from the portable scalar code
//! (`math.rs` and the closures of `mod.rs`), so instead of rewriting each of them with
//! intrinsics, [`staged`] runs the unchanged kernel over blocks of [`STAGE_BYTES`] into a buffer
//! that stays in L1, and copies each block out with 32-byte streaming stores. The values are the
//! kernel's own, bit for bit.
//!
//! Only the AVX level streams: 16-byte (SSE2) streaming stores were no faster than normal ones,
//! 32-byte ones were (the A/B is in BENCHMARKS.md, "Elementwise maths and reductions", "streaming stores at the AVX2
//! level").

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::{__m256i, _mm256_load_si256, _mm256_stream_si256, _mm_sfence};
use std::mem::{size_of, MaybeUninit};

/// Bytes computed per step into the staging buffer: small enough to stay in L1 (32 KiB and
/// more on every AVX2 CPU) beside the inputs' lines, large enough that the per-block kernel
/// call costs nothing measurable.
const STAGE_BYTES: usize = 4096;

/// The staging buffer, aligned for 32-byte loads and to whole cache lines.
#[repr(C, align(64))]
struct Stage([MaybeUninit<u8>; STAGE_BYTES]);

/// Fills all of `dst` by calling `compute(offset, piece)`, which must write every element of
/// `piece` (the elements `offset..offset + piece.len()` of the result). The part of `dst` that
/// starts on a 64-byte boundary is written in blocks of [`STAGE_BYTES`]: computed into a
/// cache-resident buffer, then copied out with streaming stores; the head before that boundary
/// and the tail after the last whole block are computed in place.
///
/// # Safety
/// The CPU must support AVX (every [`SimdLevel::Avx2Fma`](super::SimdLevel::Avx2Fma) CPU
/// does), and `compute` must write every element of each piece it is given.
#[target_feature(enable = "avx")]
pub(super) unsafe fn staged<T: Copy>(
    dst: &mut [MaybeUninit<T>],
    mut compute: impl FnMut(usize, &mut [MaybeUninit<T>]),
) {
    let size = size_of::<T>();
    debug_assert!(
        size > 0 && STAGE_BYTES.is_multiple_of(size) && 64 % std::mem::align_of::<T>() == 0
    );
    let n = dst.len();
    let addr = dst.as_ptr() as usize;
    let head = ((addr.next_multiple_of(64) - addr) / size).min(n);
    if head > 0 {
        compute(0, &mut dst[..head]);
    }
    let per = STAGE_BYTES / size;
    let mut stage = Stage([MaybeUninit::uninit(); STAGE_BYTES]);
    let mut i = head;
    while n - i >= per {
        // SAFETY: the stage holds STAGE_BYTES = per·size bytes, aligned to 64 ≥ align_of::<T>,
        // and nothing else borrows it; MaybeUninit<T> needs no initialisation.
        let piece = unsafe {
            std::slice::from_raw_parts_mut(stage.0.as_mut_ptr().cast::<MaybeUninit<T>>(), per)
        };
        compute(i, piece);
        let from = stage.0.as_ptr().cast::<__m256i>();
        // SAFETY: i + per ≤ n, so the block lies inside `dst`.
        let to = unsafe { dst.as_mut_ptr().add(i) }.cast::<__m256i>();
        for j in 0..STAGE_BYTES / 32 {
            // SAFETY: `compute` wrote the whole stage (the caller's contract), which is 64-byte
            // aligned, so every 32-byte load reads initialised, aligned bytes inside it;
            // `to` = dst + (head + k·per)·size is 64-byte aligned (the head ends on a 64-byte
            // boundary, and per·size = STAGE_BYTES is a multiple of 64), so every 32-byte
            // store is aligned, as the instruction requires, and inside the block.
            unsafe { _mm256_stream_si256(to.add(j), _mm256_load_si256(from.add(j))) };
        }
        i += per;
    }
    if i < n {
        compute(i, &mut dst[i..]);
    }
    // Streaming stores are weakly ordered: fence them before anyone else reads `dst`.
    _mm_sfence();
}
