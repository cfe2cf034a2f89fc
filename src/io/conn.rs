//! A connection that is plain TCP or TLS over it: what the RTSP client
//! and both servers read and write through.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::ops::{Deref, DerefMut};

/// A connection, plain or TLS (`C` is rustls's client or server
/// connection).
pub(crate) enum Conn<C> {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<rustls::StreamOwned<C, TcpStream>>),
}

impl<C> Conn<C> {
    /// The TCP socket under the connection (for timeouts and shutdown).
    #[cfg_attr(
        not(any(feature = "http-server", feature = "rtsp-server")),
        allow(dead_code)
    )]
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }
}

impl<C, S> Read for Conn<C>
where
    C: DerefMut + Deref<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }

    /// One `readv` on plain TCP (a payload straight into its destination
    /// and the next frame's head into a buffer); TLS reads the first
    /// non-empty buffer.
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read_vectored(bufs),
            Conn::Tls(s) => s.read_vectored(bufs),
        }
    }
}

impl<C, S> Write for Conn<C>
where
    C: DerefMut + Deref<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}
