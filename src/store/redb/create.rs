//! Making a new file atomically, and removing what a creator killed
//! midway left behind.

use std::path::Path;

use super::file::{self, Backend};
use super::{io_err, open_checked};
use crate::error::OpenError;
use crate::store::StoreError;

/// Creates a new file atomically: redb grows a new file before it writes
/// its header, so a process killed meanwhile would leave a file no open
/// accepts. The file is made complete under a temporary name (with the
/// format version committed), then linked into place, never over an
/// existing file; a kill leaves at most a stray temporary file beside it.
pub(super) fn create(path: &Path, backend: &Backend, cache_bytes: usize) -> Result<(), OpenError> {
    let failed = |message: String| OpenError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    check_directory(path)?;
    let mut name = temporary_prefix(path);
    name.push(std::process::id().to_string());
    let temporary = path.with_file_name(name);
    let _ = std::fs::remove_file(&temporary);
    // Tried first with std, whose error keeps its kind: redb's would only
    // say that the temporary file "cannot be opened".
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
    {
        Ok(probe) => {
            drop(probe);
            let _ = std::fs::remove_file(&temporary);
        }
        Err(e) if is_not_writable(&e) => {
            return Err(OpenError::NotWritable {
                path: path.to_path_buf(),
                place: directory_of(path).to_path_buf(),
                message: e.to_string(),
            });
        }
        Err(_) => {}
    }
    let opened = file::contain(|| open_checked(&temporary, backend, false, cache_bytes, false));
    let refused = match opened {
        Ok(Ok(db)) => {
            drop(db);
            None
        }
        Err(message) => Some(failed(message)),
        Ok(Err(other)) => Some(named_after(other, path)),
    };
    if let Some(err) = refused {
        // Its space is needed most when the disk is full.
        let _ = std::fs::remove_file(&temporary);
        return Err(err);
    }
    let linked = std::fs::hard_link(&temporary, path).or_else(|e| {
        // A file system without hard links: rename, still never over a file.
        if e.kind() != std::io::ErrorKind::AlreadyExists && !path.exists() {
            std::fs::rename(&temporary, path)
        } else {
            Err(e)
        }
    });
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {}
        // Another process created it first: open that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(match io_err(&e) {
                StoreError::Full(message) => OpenError::DiskFull {
                    path: path.to_path_buf(),
                    message,
                },
                _ => failed(format!("could not create the file: {e}")),
            });
        }
    }
    // The new name must survive a power cut as well.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The directory a file is created in (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Says what is wrong with the directory a new file was asked for, in the
/// terms of the path the user gave: missing, or not a directory.
fn check_directory(path: &Path) -> Result<(), OpenError> {
    let directory = directory_of(path);
    if directory.is_dir() {
        return Ok(());
    }
    // The deepest part of the path that exists tells which it is.
    let existing = directory.ancestors().find(|a| a.exists());
    match existing {
        Some(file) if !file.as_os_str().is_empty() && !file.is_dir() => {
            Err(OpenError::NotADirectory {
                path: path.to_path_buf(),
                not_a_directory: file.to_path_buf(),
            })
        }
        _ => Err(OpenError::NoSuchDirectory {
            path: path.to_path_buf(),
            directory: directory.to_path_buf(),
        }),
    }
}

/// No write permission, or a read-only file system.
pub(super) fn is_not_writable(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// An error about the temporary file, told about the file asked for.
fn named_after(err: OpenError, path: &Path) -> OpenError {
    let path = path.to_path_buf();
    match err {
        OpenError::DiskFull { message, .. } => OpenError::DiskFull { path, message },
        OpenError::Unreadable { message, .. } => OpenError::Unreadable { path, message },
        OpenError::AlreadyInUse { .. } => OpenError::AlreadyInUse { path },
        OpenError::NotWritable { message, .. } => OpenError::NotWritable {
            place: directory_of(&path).to_path_buf(),
            path,
            message,
        },
        other => other,
    }
}

/// `<file name>.creating-`: the start of the name a new file is created
/// under, before the creating process's ID.
fn temporary_prefix(path: &Path) -> std::ffi::OsString {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".creating-");
    name
}

/// Removes the temporary files that processes killed while creating the
/// file left beside it. Only where `/proc` tells which processes are alive,
/// and only files no process holds locked: a live process's temporary file
/// may be a creation in progress (redb locks the file while it is open,
/// which also covers a creator whose process ID this `/proc` does not show,
/// in another PID namespace).
pub(super) fn remove_stray_temporaries(path: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let prefix = temporary_prefix(path);
    let Some(prefix) = prefix.to_str() else {
        return;
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let canonical = pid.parse::<u32>().is_ok_and(|n| n.to_string() == pid);
        if !canonical || proc.join(pid).exists() {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        if file.try_lock().is_ok() {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %entry.path().display(), "removed a file left by a process killed while creating the database")
                }
                Err(e) => {
                    tracing::debug!(file = %entry.path().display(), error = %e, "could not remove a stray temporary file")
                }
            }
        }
    }
}
