use crate::error::*;
use crate::{SmbTransport, SmbTransportRead, SmbTransportWrite};

#[cfg(feature = "async")]
use futures_core::future::BoxFuture;
use maybe_async::*;
use std::net::SocketAddr;
use std::time::Duration;

#[cfg(feature = "async")]
use futures_util::FutureExt;
#[cfg(not(feature = "async"))]
use std::{
    io::{self, Read, Write},
    net::TcpStream,
};
#[cfg(feature = "async")]
use tokio::{
    io::{self, AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, tcp},
    select,
};

use binrw::prelude::*;

#[cfg(feature = "async")]
type TcpRead = tcp::OwnedReadHalf;
#[cfg(feature = "async")]
type TcpWrite = tcp::OwnedWriteHalf;

#[cfg(not(feature = "async"))]
type TcpRead = TcpStream;
#[cfg(not(feature = "async"))]
type TcpWrite = TcpStream;
pub struct TcpTransport {
    reader: Option<TcpRead>,
    writer: Option<TcpWrite>,
    timeout: Duration,
}

impl TcpTransport {
    pub const DEFAULT_PORT: u16 = 445;

    pub fn new(timeout: Duration) -> TcpTransport {
        TcpTransport {
            reader: None,
            writer: None,
            timeout,
        }
    }

    /// Connects to a NetBios server in the specified endpoint with a timeout.
    /// This is the threaded version of [connect](NetBiosClient::connect) -
    /// using the [std::net::TcpStream] as the underlying socket provider.
    #[cfg(not(feature = "async"))]
    fn connect_timeout(&mut self, endpoint: &SocketAddr) -> Result<TcpStream> {
        if self.timeout == Duration::ZERO {
            log::debug!("Connecting to {endpoint}.");
            return TcpStream::connect(endpoint).map_err(Into::into);
        }

        log::debug!("Connecting to {endpoint} with timeout {:?}.", self.timeout);
        TcpStream::connect_timeout(endpoint, self.timeout).map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => {
                log::error!("Connection timed out after {:?}", self.timeout);
                TransportError::Timeout(self.timeout)
            }
            _ => {
                log::error!("Failed to connect to {endpoint}: {e}");
                e.into()
            }
        })
    }

    /// Connects to a NetBios server in the specified endpoint with a timeout.
    /// This is the async version of [connect](NetBiosClient::connect) -
    /// using the [tokio::net::TcpStream] as the underlying socket provider.
    #[cfg(feature = "async")]
    async fn connect_timeout(&mut self, endpoint: &SocketAddr) -> Result<TcpStream> {
        if self.timeout == Duration::ZERO {
            log::debug!("Connecting to {endpoint}.",);
            return TcpStream::connect(&endpoint).await.map_err(Into::into);
        }

        log::debug!("Connecting to {endpoint} with timeout {:?}.", self.timeout);
        select! {
            res = TcpStream::connect(&endpoint) => res.map_err(Into::into),
            _ = tokio::time::sleep(self.timeout) => Err(
                TransportError::Timeout(self.timeout)
            ),
        }
    }

    /// Async implementation of split socket to read and write halves.
    #[cfg(feature = "async")]
    fn split_socket(socket: TcpStream) -> (TcpRead, TcpWrite) {
        let (r, w) = socket.into_split();
        (r, w)
    }

    /// Sync implementation of split socket to read and write halves.
    #[cfg(not(feature = "async"))]
    fn split_socket(socket: TcpStream) -> (TcpRead, TcpWrite) {
        let rsocket = socket.try_clone().unwrap();
        let wsocket = socket;

        (rsocket, wsocket)
    }

    /// For synchronous implementations, gets the read timeout for the connection.
    #[cfg(not(feature = "async"))]
    pub fn read_timeout(&self) -> Result<Option<std::time::Duration>> {
        self.reader
            .as_ref()
            .ok_or(TransportError::NotConnected)?
            .read_timeout()
            .map_err(|e| e.into())
    }

    /// Maps a TCP error to a crate error.
    /// Connection aborts and unexpected EOFs are mapped to [Error::NotConnected].
    #[inline]
    fn map_tcp_error(e: io::Error) -> TransportError {
        if e.kind() == io::ErrorKind::ConnectionAborted || e.kind() == io::ErrorKind::UnexpectedEof
        {
            log::error!("Got IO error: {e} -- Connection Error, notify NotConnected!");
            return TransportError::NotConnected;
        }
        if e.kind() == io::ErrorKind::WouldBlock {
            log::trace!("Got IO error: {e} -- with ErrorKind::WouldBlock.");
        } else {
            log::error!("Got IO error: {e} -- Mapping to IO error.",);
        }
        e.into()
    }

    #[maybe_async]
    #[inline]
    async fn receive_exact(&mut self, out_buf: &mut [u8]) -> Result<()> {
        let reader = self.reader.as_mut().ok_or(TransportError::NotConnected)?;
        log::trace!("Reading {} bytes.", out_buf.len());
        reader
            .read_exact(out_buf)
            .await
            .map_err(Self::map_tcp_error)?;
        log::trace!("Read {} bytes OK.", out_buf.len());
        Ok(())
    }

    /// sft patch: fill `buf`, reading through socket read timeouts once
    /// any byte of it has arrived (or, with `idle_ok` false, from the
    /// start). See [`SmbTransportRead::receive`] for why.
    #[cfg(not(feature = "async"))]
    fn receive_whole(&mut self, buf: &mut [u8], idle_ok: bool) -> Result<()> {
        let stall_limit = if self.timeout.is_zero() {
            Duration::from_secs(30)
        } else {
            self.timeout
        };
        let reader = self.reader.as_mut().ok_or(TransportError::NotConnected)?;
        let mut done = 0;
        let mut last_progress = std::time::Instant::now();
        while done < buf.len() {
            match reader.read(&mut buf[done..]) {
                Ok(0) => return Err(TransportError::NotConnected),
                Ok(n) => {
                    done += n;
                    last_progress = std::time::Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if done == 0 && idle_ok {
                        return Err(e.into());
                    }
                    if last_progress.elapsed() >= stall_limit {
                        // The stream cannot be resynchronised: give the
                        // connection up (its requests fail, callers reconnect).
                        return Err(TransportError::NotConnected);
                    }
                }
                Err(e) => return Err(Self::map_tcp_error(e)),
            }
        }
        Ok(())
    }

    /// sft patch: append `len` bytes of a message that has begun to
    /// `data` (through its spare capacity, so nothing is zero-filled
    /// first), reading through socket read timeouts as
    /// [`Self::receive_whole`] does.
    #[cfg(not(feature = "async"))]
    fn receive_into(&mut self, data: &mut Vec<u8>, len: usize) -> Result<()> {
        let stall_limit = if self.timeout.is_zero() {
            Duration::from_secs(30)
        } else {
            self.timeout
        };
        let reader = self.reader.as_mut().ok_or(TransportError::NotConnected)?;
        let mut last_progress = std::time::Instant::now();
        while data.len() < len {
            let before = data.len();
            let want = (len - before) as u64;
            let r = Read::take(&mut *reader, want).read_to_end(data);
            if data.len() > before {
                last_progress = std::time::Instant::now();
            }
            match r {
                Ok(0) => return Err(TransportError::NotConnected),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if last_progress.elapsed() >= stall_limit {
                        return Err(TransportError::NotConnected);
                    }
                }
                Err(e) => return Err(Self::map_tcp_error(e)),
            }
        }
        Ok(())
    }

    #[maybe_async::maybe_async]
    #[inline]
    async fn send_raw(&mut self, message: &[u8]) -> Result<()> {
        log::trace!("Sending {} bytes.", message.len());
        let writer = self.writer.as_mut().ok_or(TransportError::NotConnected)?;
        writer
            .write_all(message)
            .await
            .map_err(Self::map_tcp_error)?;
        Ok(())
    }

    #[maybe_async::maybe_async]
    #[inline]
    async fn do_connect(&mut self, _server_name: &str, server_address: SocketAddr) -> Result<()> {
        let socket = self.connect_timeout(&server_address).await?;
        // sft patch: SMB is request/response; with Nagle on, a request
        // written in pieces waits for the peer's delayed ACK (~40 ms).
        socket.set_nodelay(true)?;
        let (r, w) = Self::split_socket(socket);
        self.reader = Some(r);
        self.writer = Some(w);
        Ok(())
    }
}

/// sft patch: dropping the writing half shuts the socket down. The
/// threaded worker stops by ending its send loop (dropping the writer) and
/// then joining its receive loop, which sat in a read with a 100 ms
/// timeout: every connection's close waited up to 100 ms for it. The
/// shutdown ends that read at once (end of stream). Only the worker's
/// stop drops the writer, after the last request was answered.
#[cfg(not(feature = "async"))]
impl Drop for TcpTransport {
    fn drop(&mut self) {
        if let Some(w) = &self.writer {
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl SmbTransport for TcpTransport {
    #[cfg(feature = "async")]
    fn connect<'a>(
        &'a mut self,
        server_name: &'a str,
        server_address: SocketAddr,
    ) -> BoxFuture<'a, Result<()>> {
        self.do_connect(server_name, server_address).boxed()
    }
    #[cfg(not(feature = "async"))]
    fn connect(&mut self, server_name: &str, server_address: SocketAddr) -> Result<()> {
        self.do_connect(server_name, server_address)
    }

    fn split(
        mut self: Box<Self>,
    ) -> Result<(Box<dyn SmbTransportRead>, Box<dyn SmbTransportWrite>)> {
        // sft patch: `take`, not move (the sync build implements `Drop`).
        Ok((
            Box::new(Self {
                reader: self.reader.take(),
                writer: None,
                timeout: self.timeout,
            }),
            Box::new(Self {
                reader: None,
                writer: self.writer.take(),
                timeout: self.timeout,
            }),
        ))
    }

    fn default_port(&self) -> u16 {
        Self::DEFAULT_PORT
    }

    fn remote_address(&self) -> Result<SocketAddr> {
        self.reader
            .as_ref()
            .ok_or(TransportError::NotConnected)?
            .peer_addr()
            .map_err(Into::into)
    }
}

impl SmbTransportWrite for TcpTransport {
    #[cfg(feature = "async")]
    fn send_raw<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        self.send_raw(buf).boxed()
    }
    #[cfg(not(feature = "async"))]
    fn send_raw(&mut self, buf: &[u8]) -> Result<()> {
        self.send_raw(buf)
    }

    /// sft patch: the transport header and the message's buffers in one
    /// write (one segment for a small request) instead of one write each.
    #[cfg(not(feature = "async"))]
    fn send(&mut self, data: &crate::IoVec) -> Result<()> {
        let size = data.total_size();
        let header = crate::SmbTcpMessageHeader {
            stream_protocol_length: size as u32,
        };
        let mut message = Vec::with_capacity(crate::SmbTcpMessageHeader::SIZE + size);
        header.write(&mut std::io::Cursor::new(&mut message))?;
        for buf in data.iter() {
            message.extend_from_slice(buf);
        }
        self.send_raw(&message)
    }
}

impl SmbTransportRead for TcpTransport {
    #[cfg(feature = "async")]
    fn receive_exact<'a>(&'a mut self, out_buf: &'a mut [u8]) -> BoxFuture<'a, Result<()>> {
        self.receive_exact(out_buf).boxed()
    }
    #[cfg(not(feature = "async"))]
    fn receive_exact(&mut self, out_buf: &mut [u8]) -> Result<()> {
        self.receive_exact(out_buf)
    }

    /// sft patch: one whole message or nothing. The threaded worker polls
    /// with a 100 ms socket read timeout and takes `WouldBlock` for "no
    /// message yet"; the default `receive` (`read_exact` of the header,
    /// then of the body) drops the bytes it already read when the timeout
    /// strikes mid-message (a server pausing 100 ms inside a large
    /// response), and every later message is then misframed. Here only a
    /// timeout before a message's first byte is reported; once a message
    /// has begun it is read to its end, through read timeouts, unless no
    /// byte arrives for the transport's timeout.
    #[cfg(not(feature = "async"))]
    fn receive(&mut self) -> Result<Vec<u8>> {
        let mut header = [0u8; crate::SmbTcpMessageHeader::SIZE];
        self.receive_whole(&mut header, true)?;
        let header = crate::SmbTcpMessageHeader::read(&mut std::io::Cursor::new(header))?;
        // sft patch: read into spare capacity, not a zero-filled buffer
        // (zeroing 1 MiB per read response cost 3% of a fetch).
        let len = header.stream_protocol_length as usize;
        let mut data = Vec::with_capacity(len);
        self.receive_into(&mut data, len)?;
        Ok(data)
    }

    #[cfg(not(feature = "async"))]
    fn set_read_timeout(&self, timeout: std::time::Duration) -> Result<()> {
        self.reader
            .as_ref()
            .ok_or(TransportError::NotConnected)?
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.into())
    }
}
