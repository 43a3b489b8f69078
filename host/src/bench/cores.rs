//! Where the bench's backends run: a runtime of their own and, with `bench --backend-cores`, cores
//! of their own, as S3 runs on other machines, so the proxies' CPU does not come out of the
//! backend's. Core affinity has no std API: the libc calls here are the bench's one use of
//! `unsafe`, each with its SAFETY note.
#![allow(unsafe_code)]

use anyhow::Context as _;

/// Which cores the backend gets and which the client and the proxies share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub backend: Vec<usize>,
    pub rest: Vec<usize>,
}

impl Split {
    /// The upper half of `cores` for the backend, the lower half for everything else; `None`
    /// with fewer than two cores (there is nothing to split).
    pub fn halves(cores: &[usize]) -> Option<Split> {
        if cores.len() < 2 {
            return None;
        }
        let (rest, backend) = cores.split_at(cores.len() / 2);
        Some(Split { backend: backend.to_vec(), rest: rest.to_vec() })
    }
}

/// The cores this process may run on.
pub fn allowed() -> anyhow::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data, all zeroes an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread, and `set` is a valid cpu_set_t of the size given.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot read this process's cores (sched_getaffinity)");
    }
    // SAFETY: CPU_ISSET reads a bit of a valid cpu_set_t, below CPU_SETSIZE.
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}

/// Confine thread `tid` (0: the calling thread) to `cores`.
pub fn pin(tid: i32, cores: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data, all zeroes an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cores.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: CPU_SET writes a bit below CPU_SETSIZE of a valid cpu_set_t.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    match unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Confine every thread this process has now to `cores`; threads started later inherit it from
/// the thread that starts them (the proxies' serving threads, the Go proxy's process).
pub fn pin_process(cores: &[usize]) -> anyhow::Result<()> {
    for entry in std::fs::read_dir("/proc/self/task").context("cannot list this process's threads")? {
        let tid = entry?.file_name().to_string_lossy().parse::<i32>().context("a thread id in /proc/self/task")?;
        pin(tid, cores).with_context(|| format!("cannot confine thread {tid} to cores {cores:?}"))?;
    }
    Ok(())
}

/// The backends' runtime: on `cores` when given (its workers and the blocking threads where s3s-fs
/// does its file I/O), else anywhere. Idle blocking threads leave after a second: s3s-fs takes one
/// per file read, and hundreds left idle by the rows at 32 at a time slowed the large rows after
/// them (each read then woke a cold thread).
pub fn backend_runtime(cores: Option<&[usize]>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.thread_name("bench-backend").thread_keep_alive(std::time::Duration::from_secs(1)).enable_all();
    if let Some(cores) = cores {
        let pinned = cores.to_vec();
        // A thread left unpinned only makes the figures like an unpinned run's, so no panic.
        builder.worker_threads(cores.len()).on_thread_start(move || drop(pin(0, &pinned)));
    }
    builder.build().context("cannot start the backends' runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_give_the_backend_the_second() {
        assert_eq!(Split::halves(&[0, 1]), Some(Split { backend: vec![1], rest: vec![0] }));
    }

    #[test]
    fn odd_counts_give_the_backend_the_larger_half() {
        assert_eq!(Split::halves(&[0, 1, 2]), Some(Split { backend: vec![1, 2], rest: vec![0] }));
    }

    #[test]
    fn one_core_cannot_be_split() {
        assert_eq!(Split::halves(&[3]), None);
    }

    #[test]
    fn a_pinned_thread_sees_only_its_cores() {
        let cores = allowed().unwrap();
        let first = cores[0];
        let seen = std::thread::spawn(move || {
            pin(0, &[first]).unwrap();
            allowed().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![first]);
    }
}
