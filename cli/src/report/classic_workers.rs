//! The classic table's process rows: the report spawns itself (`current_exe()` with a hidden
//! `--worker` flag), never forks from a process with a live BLAS pool, and shares inputs and
//! outputs through one shared-memory segment instead of copies or pipes.
//!
//! **How**: the parent creates an anonymous segment with `memfd_create` (no file name, freed
//! when the last process lets go), sizes it with `ftruncate`, maps it shared (`memmap2`) and writes
//! the inputs once. The descriptor is created without close-on-exec, so each worker inherits
//! it and maps the same pages; its spec (JSON on the command line) says where its input and
//! output regions are. The segment's first page is a header of atomics: a ready counter, a go
//! flag and each worker's CLOCK_MONOTONIC timestamps, so the parent separates what the sharing
//! costs (setup, spawn, exit) from the compute.

use anyhow::Context as _;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::report::lifecycle::{self, Tracked};
use crate::report::self_command::{self_command, SelfRole};
use crate::report::stats::monotonic_ns;
use crate::report::workloads::{self, Workload};

/// Workers one segment's header has room for.
pub const MAX_WORKERS: usize = 64;
/// Bytes before the first data region: the header, rounded to a page.
const DATA_START: usize = 4096;

/// One worker's timestamps and status, in the header.
#[repr(C)]
struct WorkerRecord {
    ready_ns: AtomicU64,
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    /// 0 running, 1 done, 2 failed.
    status: AtomicU64,
}

/// The segment's first bytes.
#[repr(C)]
struct SegmentHeader {
    ready: AtomicU64,
    /// 0 wait, 1 go, 2 abort.
    go: AtomicU64,
    records: [WorkerRecord; MAX_WORKERS],
}

const _: () = assert!(std::mem::size_of::<SegmentHeader>() <= DATA_START);

/// A shared-memory segment mapped into this process (the mapping is `memmap2`'s).
pub struct SharedMemory {
    file: std::fs::File,
    /// Owns the mapping (unmapped on drop); the slices are made from `ptr`, its start.
    _mapping: memmap2::MmapMut,
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedMemory {
    /// A new zero-filled segment of `len` bytes whose descriptor spawned processes inherit.
    pub fn create(len: usize) -> io::Result<SharedMemory> {
        // SAFETY: the name is a NUL-terminated literal; flags 0 (no MFD_CLOEXEC) is valid and
        // makes the descriptor survive exec, which is how workers get it.
        let raw = unsafe { libc::memfd_create(c"parlinalg-report".as_ptr(), 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor memfd_create just returned; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let size = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        // SAFETY: ftruncate on a descriptor we own; it only sets the file's size (zero-filled).
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(fd, len)
    }

    /// Maps the segment a parent passed down as descriptor `fd`, checking its size.
    pub fn open_inherited(fd: RawFd, len: usize) -> io::Result<SharedMemory> {
        // SAFETY: fstat on any integer is sound: a bad descriptor gives EBADF, checked below.
        let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
        // SAFETY: `st` is a valid stat buffer for the call to fill.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if usize::try_from(st.st_size).ok() != Some(len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("descriptor {fd} holds {} bytes, not {len}", st.st_size),
            ));
        }
        // SAFETY: the parent gave this worker the descriptor for its own use; the worker
        // never uses `fd` elsewhere, so taking ownership closes it exactly once.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<SharedMemory> {
        if len < DATA_START {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "segment smaller than its header",
            ));
        }
        let file = std::fs::File::from(fd);
        // SAFETY: the segment is an anonymous memfd that only the report's own processes map,
        // and they touch it only through the header's atomics and regions no other process
        // writes at the same time (see `f64s`, `f64s_mut`, `views`): nothing truncates or
        // rewrites it behind the mapping's back.
        let mut map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(&file)? };
        let ptr = NonNull::new(map.as_mut_ptr()).expect("mmap never maps address 0");
        Ok(SharedMemory {
            file,
            _mapping: map,
            ptr,
            len,
        })
    }

    /// The descriptor, for a worker's spec.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    fn header(&self) -> &SegmentHeader {
        // SAFETY: the mapping is page-aligned, at least DATA_START ≥ size_of::<SegmentHeader>() bytes,
        // zero-filled at creation (all-zero atomics are valid), and lives as long as `self`;
        // every process touches the header only through atomics.
        unsafe { &*self.ptr.as_ptr().cast::<SegmentHeader>() }
    }

    /// The f64 elements of `region`, read-only.
    ///
    /// Only call while no other process writes the region (before spawning or after reaping
    /// the workers, or in a worker for its input).
    pub fn f64s(&self, region: Region) -> &[f64] {
        self.check(region);
        // SAFETY: `check` proved the region lies inside the mapping past the header and is
        // 8-byte aligned; zero-filled bytes are valid f64s; no process writes it meanwhile
        // (the caller's contract above), and the slice borrows `self`.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().add(region.offset).cast(), region.len)
        }
    }

    /// The f64 elements of `region`, writable.
    ///
    /// Only call while no other process reads or writes the region.
    pub fn f64s_mut(&mut self, region: Region) -> &mut [f64] {
        self.check(region);
        // SAFETY: as in `f64s`, and `&mut self` makes this the only slice into the mapping in
        // this process; other processes stay off the region (the caller's contract above).
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(region.offset).cast(), region.len)
        }
    }

    /// A worker's inputs and its output at once (no two may overlap).
    pub fn views<const N: usize>(
        &mut self,
        inputs: [Region; N],
        output: Region,
    ) -> ([&[f64]; N], &mut [f64]) {
        for (i, r) in inputs.iter().enumerate() {
            self.check(*r);
            assert!(r.disjoint(output), "input {i} overlaps the output");
        }
        self.check(output);
        let base = self.ptr.as_ptr();
        // SAFETY: every region is inside the mapping and aligned (checked above), and the
        // output overlaps no input, so the mutable slice aliases none of the shared ones
        // (inputs may overlap each other: they are only read); all borrow `self` mutably, so
        // no other slice into the mapping exists in this process meanwhile.
        unsafe {
            (
                inputs.map(|r| {
                    std::slice::from_raw_parts(base.add(r.offset).cast::<f64>().cast_const(), r.len)
                }),
                std::slice::from_raw_parts_mut(base.add(output.offset).cast(), output.len),
            )
        }
    }

    fn check(&self, r: Region) {
        assert!(
            r.offset >= DATA_START && r.offset.is_multiple_of(8) && r.end() <= self.len,
            "region {r:?} outside the {} bytes of the segment",
            self.len
        );
    }
}

/// f64 elements at a byte offset of the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub offset: usize,
    pub len: usize,
}

impl Region {
    fn end(self) -> usize {
        self.offset + self.len * 8
    }

    fn disjoint(self, other: Region) -> bool {
        self.end() <= other.offset || other.end() <= self.offset
    }
}

/// Lays out regions one after another, each page-aligned, after the header.
struct Layout {
    next: usize,
}

impl Layout {
    fn new() -> Self {
        Layout { next: DATA_START }
    }

    fn add(&mut self, len: usize) -> Region {
        let r = Region {
            offset: self.next,
            len,
        };
        self.next = r.end().div_ceil(4096) * 4096;
        r
    }
}

/// What one worker does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub workload: Workload,
    pub fd: RawFd,
    pub segment_len: usize,
    pub rank: usize,
    pub workers: usize,
    /// g, f: this worker's repetitions; h: its products.
    pub reps: usize,
    /// g, f: the input x (shared by all); h: this worker's block of a.
    pub input: Region,
    /// h: this worker's block of b.
    pub input_b: Option<Region>,
    /// g, f: this worker's output region; h: its block of c.
    pub output: Region,
    /// h: the products' size.
    pub n: usize,
    /// BLAS threads in this worker.
    pub blas: usize,
    /// The parent's process id: a worker whose parent died stops waiting.
    pub parent: u32,
}

/// A process row's job: the workload and its inputs in the parent.
pub enum Job<'a> {
    /// g or f over `x`, `reps` repetitions split among the workers.
    Exp {
        workload: Workload,
        x: &'a [f64],
        reps: usize,
    },
    /// h: `a` and `b` are batches of n×n products (C order, one after another); the workers
    /// take contiguous blocks of products.
    Products {
        a: &'a [f64],
        b: &'a [f64],
        n: usize,
        blas: usize,
    },
}

/// What a process row cost, split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessRowCost {
    /// Bytes in the segment.
    pub bytes: usize,
    /// Creating, sizing and mapping the segment and writing the inputs into it.
    pub setup_s: f64,
    /// From the first spawn until every worker has mapped the segment and waits.
    pub spawn_s: f64,
    /// From "go" until the last worker finished its share.
    pub compute_s: f64,
    /// From then until every worker has exited and been reaped.
    pub exit_s: f64,
}

impl ProcessRowCost {
    /// The row's time as the parent sees it once the inputs are shared: spawn + compute + exit.
    pub fn total_s(&self) -> f64 {
        self.spawn_s + self.compute_s + self.exit_s
    }
}

/// Each worker's regions: (reps or products, input, input b, output).
type Assignment = (usize, Region, Option<Region>, Region);

/// Runs `job` in `workers` processes and checks their outputs.
///
/// # Errors
/// A worker that could not start, failed or wrote wrong results; I/O errors of the segment.
pub fn run(job: &Job<'_>, workers: usize) -> anyhow::Result<ProcessRowCost> {
    assert!((1..=MAX_WORKERS).contains(&workers));
    let t_setup = Instant::now();
    let mut layout = Layout::new();
    let work = assign(job, workers, &mut layout);
    let mut shm = SharedMemory::create(layout.next).context("memfd segment")?;
    write_inputs(&mut shm, job, &work.assignments);
    let setup_s = t_setup.elapsed().as_secs_f64();

    let t_spawn = Instant::now();
    let mut children = spawn_workers(&shm, &work, layout.next)?;
    let header = shm.header();
    while header.ready.load(Ordering::Acquire) < workers as u64 {
        if let Some(why) = dead_child(&mut children) {
            abort(&shm, &mut children);
            anyhow::bail!("a worker exited before it was ready: {why}");
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let spawn_s = t_spawn.elapsed().as_secs_f64();
    let go_ns = monotonic_ns();
    header.go.store(1, Ordering::Release);
    let mut failures: Vec<String> = children
        .iter_mut()
        .enumerate()
        .filter_map(|(rank, child)| match child.wait() {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!("worker {rank}: {s}")),
            Err(e) => Some(format!("worker {rank}: {e}")),
        })
        .collect();
    let reaped_ns = monotonic_ns();
    let records = &header.records[..workers];
    for (rank, record) in records.iter().enumerate() {
        if record.status.load(Ordering::Acquire) != 1 {
            failures.push(format!("worker {rank} did not finish its share"));
        }
    }
    if !failures.is_empty() {
        anyhow::bail!(failures.join("; "));
    }
    let last_end = records
        .iter()
        .map(|s| s.end_ns.load(Ordering::Acquire))
        .max()
        .unwrap_or(go_ns)
        .max(go_ns);
    check_outputs(&shm, &work)?;
    Ok(ProcessRowCost {
        bytes: layout.next,
        setup_s,
        spawn_s,
        compute_s: (last_end - go_ns) as f64 * 1e-9,
        exit_s: reaped_ns.saturating_sub(last_end) as f64 * 1e-9,
    })
}

/// What the workers of one job compute, and where in the segment.
struct Work {
    workload: Workload,
    /// Order of h's products (0 for g and f).
    n: usize,
    blas: usize,
    assignments: Vec<Assignment>,
}

/// Splits `job` over `workers` and lays out its regions: one shared input for g and f and an
/// output each; contiguous blocks of the batch for h.
fn assign(job: &Job<'_>, workers: usize, layout: &mut Layout) -> Work {
    match job {
        Job::Exp { workload, x, reps } => {
            let input = layout.add(x.len());
            let assignments = (0..workers)
                .map(|w| {
                    let reps = workloads::share(*reps, workers, w);
                    (reps, input, None, layout.add(x.len()))
                })
                .collect();
            Work {
                workload: *workload,
                n: 0,
                blas: 1,
                assignments,
            }
        }
        Job::Products { a, b, n, blas } => {
            let nn = n * n;
            let batch = a.len() / nn.max(1);
            let (ra, rb, rc) = (
                layout.add(a.len()),
                layout.add(b.len()),
                layout.add(a.len()),
            );
            let mut first = 0;
            let assignments = (0..workers)
                .map(|w| {
                    let count = workloads::share(batch, workers, w);
                    let block = |r: Region| Region {
                        offset: r.offset + first * nn * 8,
                        len: count * nn,
                    };
                    let asg = (count, block(ra), Some(block(rb)), block(rc));
                    first += count;
                    asg
                })
                .collect();
            Work {
                workload: Workload::H,
                n: *n,
                blas: *blas,
                assignments,
            }
        }
    }
}

/// Touches every output page (so that setup, not a worker's compute, pays for them) and writes
/// the inputs once: every worker reads them in place.
fn write_inputs(shm: &mut SharedMemory, job: &Job<'_>, assignments: &[Assignment]) {
    for &(_, _, _, output) in assignments {
        shm.f64s_mut(output).fill(0.0);
    }
    let first = &assignments[0];
    match job {
        Job::Exp { x, .. } => shm.f64s_mut(first.1).copy_from_slice(x),
        Job::Products { a, b, .. } => {
            let at = |offset: usize, len: usize| Region { offset, len };
            shm.f64s_mut(at(first.1.offset, a.len())).copy_from_slice(a);
            let b_offset = first.2.expect("h has b").offset;
            shm.f64s_mut(at(b_offset, b.len())).copy_from_slice(b);
        }
    }
}

/// Starts one worker per assignment, each told where its regions are.
fn spawn_workers(
    shm: &SharedMemory,
    work: &Work,
    segment_len: usize,
) -> anyhow::Result<Vec<Tracked>> {
    let workers = work.assignments.len();
    let mut children = Vec::with_capacity(workers);
    for (rank, &(reps, input, input_b, output)) in work.assignments.iter().enumerate() {
        let spec = WorkerSpec {
            workload: work.workload,
            fd: shm.raw_fd(),
            segment_len,
            rank,
            workers,
            reps,
            input,
            input_b,
            output,
            n: work.n,
            blas: work.blas,
            parent: std::process::id(),
        };
        let json = serde_json::to_string(&spec).expect("specs serialise");
        match lifecycle::spawn(&mut self_command(SelfRole::Worker, &json)) {
            Ok(c) => children.push(c),
            Err(e) => {
                abort(shm, &mut children);
                anyhow::bail!("cannot start worker {rank}: {e}");
            }
        }
    }
    Ok(children)
}

/// Checks what each worker wrote (the workers are gone: the parent alone reads the segment).
fn check_outputs(shm: &SharedMemory, work: &Work) -> anyhow::Result<()> {
    for (w, &(count, input, input_b, output)) in work.assignments.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let (x, out) = (shm.f64s(input), shm.f64s(output));
        let checked = match input_b {
            None => workloads::check_exp(x, out),
            Some(b) => workloads::check_products(x, shm.f64s(b), out, work.n),
        };
        checked.with_context(|| format!("worker {w}"))?;
    }
    Ok(())
}

fn dead_child(children: &mut [Tracked]) -> Option<String> {
    children
        .iter_mut()
        .find_map(|c| c.try_wait().ok().flatten().map(|s| s.to_string()))
}

fn abort(shm: &SharedMemory, children: &mut Vec<Tracked>) {
    shm.header().go.store(2, Ordering::Release);
    for mut c in children.drain(..) {
        let _ = c.wait();
    }
}

/// A worker's whole life: map the segment, say ready, wait for go, compute, record.
///
/// # Errors
/// A bad spec or segment, or the workload's error.
pub fn worker_main(spec_json: &str) -> anyhow::Result<()> {
    let spec: WorkerSpec = serde_json::from_str(spec_json).context("bad worker spec")?;
    if spec.rank >= spec.workers.min(MAX_WORKERS) {
        anyhow::bail!("rank {} of {} workers", spec.rank, spec.workers);
    }
    let mut shm = SharedMemory::open_inherited(spec.fd, spec.segment_len)
        .context("cannot map the shared segment")?;
    // One outer thread (g's exp runs serially inside it), `blas` BLAS threads.
    let plan = parlinalg::threads::Plan::new(1, spec.blas)?;
    // Getting ready (counted as spawn, not compute): this process's page tables for its own
    // regions, and OpenBLAS's buffers and threads started by a first small product.
    let inputs: Vec<Region> = std::iter::once(spec.input).chain(spec.input_b).collect();
    for r in inputs {
        let pages: f64 = shm.f64s(r).iter().step_by(512).sum();
        std::hint::black_box(pages);
    }
    for v in shm.f64s_mut(spec.output).iter_mut().step_by(512) {
        *v = 0.0;
    }
    if spec.workload == Workload::H {
        let m = parlinalg::ndarray::Array2::<f64>::ones((256, 256));
        plan.run(|| parlinalg::matmul(&m, &m))??;
    }
    {
        let h = shm.header();
        let record = &h.records[spec.rank];
        record.ready_ns.store(monotonic_ns(), Ordering::Release);
        h.ready.fetch_add(1, Ordering::AcqRel);
        loop {
            match h.go.load(Ordering::Acquire) {
                // SAFETY: getppid has no preconditions and cannot fail.
                0 if u32::try_from(unsafe { libc::getppid() }).ok() != Some(spec.parent) => {
                    anyhow::bail!("the parent exited before saying go")
                }
                0 => std::thread::sleep(Duration::from_micros(50)),
                1 => break,
                _ => anyhow::bail!("aborted by the parent"),
            }
        }
    }
    let start = monotonic_ns();
    let (reps, n) = (spec.reps, spec.n);
    let result = match (spec.workload, spec.input_b) {
        (Workload::G | Workload::F, None) => {
            let ([x], out) = shm.views([spec.input], spec.output);
            let g = spec.workload == Workload::G;
            plan.run(|| {
                if g {
                    workloads::run_g(x, out, reps)
                } else {
                    workloads::run_f(x, out, reps)
                }
            })
            .map_err(anyhow::Error::from)
        }
        (Workload::H, Some(b)) => {
            let ([a, b], c) = shm.views([spec.input, b], spec.output);
            plan.run(|| workloads::run_h(a, b, c, n))
                .map_err(anyhow::Error::from)
                .and_then(|r| r.map_err(anyhow::Error::from))
        }
        (w, b) => Err(anyhow::anyhow!("workload {w:?} with input b {b:?}")),
    };
    let end = monotonic_ns();
    let record = &shm.header().records[spec.rank];
    record.start_ns.store(start, Ordering::Release);
    record.end_ns.store(end, Ordering::Release);
    record
        .status
        .store(if result.is_ok() { 1 } else { 2 }, Ordering::Release);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_page_aligned_and_disjoint() {
        let mut l = Layout::new();
        let a = l.add(10);
        let b = l.add(513);
        let c = l.add(1);
        assert_eq!(a.offset, DATA_START);
        assert!(a.disjoint(b) && b.disjoint(c) && a.disjoint(c));
        assert!(!a.disjoint(a));
        assert_eq!(b.offset % 4096, 0);
        assert_eq!(c.offset, b.offset + 8192);
    }

    #[test]
    fn a_segment_reads_back_what_was_written() {
        let mut shm = SharedMemory::create(2 * DATA_START).unwrap();
        let r = Region {
            offset: DATA_START,
            len: 4,
        };
        shm.f64s_mut(r).copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(shm.f64s(r), &[1.0, 2.0, 3.0, 4.0]);
        assert!(SharedMemory::open_inherited(shm.raw_fd(), 12345).is_err());
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn regions_past_the_end_are_refused() {
        let shm = SharedMemory::create(DATA_START).unwrap();
        shm.f64s(Region {
            offset: DATA_START,
            len: 1,
        });
    }
}
