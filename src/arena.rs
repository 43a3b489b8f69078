//! The component's allocator: a bump arena for small allocations, over the system allocator.
//!
//! Every instance serves one request and is then thrown away, so memory that a small allocation
//! frees need not be reused: the arena hands out the next bytes of one region and takes back only
//! the last allocation (a growing `Vec` or `String` grows in place). Large allocations (bodies)
//! and everything after the region is used up go to the system allocator, which frees them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Allocations up to this size come from the arena.
const SMALL: usize = 4096;
/// The arena's size: taken from the system allocator on first use; only the pages written are
/// ever touched (and then reset by the runtime).
const REGION: usize = 256 * 1024;

/// The arena: `[start, end)` is the region, `next` its first free byte (all 0 until first use).
pub struct Arena {
    start: Cell<usize>,
    next: Cell<usize>,
    end: Cell<usize>,
}

// SAFETY: a wasm32-wasip2 component has one thread; nothing shares the arena across threads.
unsafe impl Sync for Arena {}

impl Arena {
    /// An arena that takes its region on first use.
    pub const fn new() -> Arena {
        Arena { start: Cell::new(0), next: Cell::new(0), end: Cell::new(0) }
    }

    /// Whether `ptr` was handed out by the arena.
    fn holds(&self, ptr: *mut u8) -> bool {
        (self.start.get()..self.end.get()).contains(&(ptr as usize))
    }

    /// `size` bytes aligned to `align` from the region, if they fit.
    fn bump(&self, size: usize, align: usize) -> Option<*mut u8> {
        if self.end.get() == 0 {
            // SAFETY: REGION is non-zero and 16 a valid alignment.
            let region = unsafe { System.alloc(Layout::from_size_align(REGION, 16).ok()?) } as usize;
            if region == 0 {
                return None;
            }
            self.start.set(region);
            self.next.set(region);
            self.end.set(region + REGION);
        }
        let at = self.next.get().checked_add(align - 1)? & !(align - 1);
        let next = at.checked_add(size)?;
        (next <= self.end.get()).then(|| {
            self.next.set(next);
            at as *mut u8
        })
    }
}

// SAFETY: every pointer returned is either fresh, aligned and `layout.size()` bytes inside the
// region (handed out once: `next` only moves back over the last allocation when it is freed), or
// the system allocator's; `dealloc` and `realloc` tell the two apart by address.
unsafe impl GlobalAlloc for Arena {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() <= SMALL {
            if let Some(ptr) = self.bump(layout.size(), layout.align()) {
                return ptr;
            }
        }
        // SAFETY: the caller's layout, as given.
        unsafe { System.alloc(layout) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.holds(ptr) {
            // SAFETY: not the arena's, so the system allocator's, with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.holds(ptr) {
            // SAFETY: the system allocator's block, with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let end = ptr as usize + layout.size();
        // The last allocation grows (or shrinks) in place while it stays small and fits.
        if end == self.next.get() && new_size <= SMALL && ptr as usize + new_size <= self.end.get() {
            self.next.set(ptr as usize + new_size);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `layout.align()` is a valid alignment and `new_size` non-zero (it exceeds the old size).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as `alloc`.
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks hold at least `layout.size()` bytes and do not overlap (the new
            // one is fresh); the old one is then given back.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        moved
    }
}
