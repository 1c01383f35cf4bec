//! Kernel IPC baselines: a Unix domain socket and a pair of pipes, blocking, each message
//! framed by its length (see [`Framed`]).

use std::fs::File;

use crate::transport::{Class, Endpoint, Framed, Mode, Setup, Transport};

/// A pair of anonymous pipes: the echo process's stdin and stdout.
#[derive(Debug)]
pub struct Pipe;

impl Transport for Pipe {
    fn id(&self) -> &'static str {
        "pipe"
    }
    fn label(&self) -> &'static str {
        "pipe"
    }
    fn class(&self) -> Class {
        Class::Kernel
    }
    fn modes(&self) -> &'static [Mode] {
        &[Mode::Block]
    }
    fn driver(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let (to_child, from_child) = setup.spawn_piped()?;
        Ok(Box::new(Framed::new(from_child, to_child, setup.max)))
    }
    fn echo(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        // Unbuffered handles of our own stdin and stdout (std's are buffered).
        let stdin = File::from(std_fd(&std::io::stdin())?);
        let stdout = File::from(std_fd(&std::io::stdout())?);
        Ok(Box::new(Framed::new(stdin, stdout, setup.max)))
    }
}

#[cfg(unix)]
fn std_fd(s: &impl std::os::fd::AsFd) -> std::io::Result<std::os::fd::OwnedFd> {
    s.as_fd().try_clone_to_owned()
}

#[cfg(windows)]
fn std_fd(
    s: &impl std::os::windows::io::AsHandle,
) -> std::io::Result<std::os::windows::io::OwnedHandle> {
    s.as_handle().try_clone_to_owned()
}

/// A Unix domain stream socket in the temporary directory.
#[cfg(unix)]
#[derive(Debug)]
pub struct Uds;

#[cfg(unix)]
impl Transport for Uds {
    fn id(&self) -> &'static str {
        "uds"
    }
    fn label(&self) -> &'static str {
        "unix domain socket"
    }
    fn class(&self) -> Class {
        Class::Kernel
    }
    fn modes(&self) -> &'static [Mode] {
        &[Mode::Block]
    }
    fn driver(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let path = socket_path(setup);
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path)?;
        setup.spawn()?;
        let accepted = listener.accept();
        let _ = std::fs::remove_file(&path);
        let (stream, _) = accepted?;
        Ok(Box::new(Framed::new(
            stream.try_clone()?,
            stream,
            setup.max,
        )))
    }
    fn echo(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let stream = std::os::unix::net::UnixStream::connect(socket_path(setup))?;
        Ok(Box::new(Framed::new(
            stream.try_clone()?,
            stream,
            setup.max,
        )))
    }
}

#[cfg(unix)]
fn socket_path(setup: &Setup) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}.sock", setup.name))
}
