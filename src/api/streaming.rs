//! Response bodies written while they are sent: a large answer (the manifests of ten thousand
//! intents, a whole set as a document) is serialized by serde into chunks that go out as they
//! fill, instead of into one buffer the size of the answer.

use std::io::Write;

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::Bytes;
use tokio::sync::mpsc;

/// Bytes per chunk handed to the connection.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the connection before the writer waits: bounds what a slow reader holds.
const CHUNKS_IN_FLIGHT: usize = 4;

/// An `io::Write` that sends full chunks down a bounded channel (from a blocking thread).
struct ChunkWriter {
    buffer: Vec<u8>,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A 200 whose body `write` produces on a blocking thread (serialization is CPU work). A
/// failure after the first bytes cannot change the status any more: it ends the body early,
/// and is logged.
pub fn streamed<F>(content_type: &'static str, write: F) -> HttpResponse
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            buffer: Vec::with_capacity(CHUNK),
            sender,
        };
        // JSON ends with a newline, as every JSON answer does (`api::conformance`).
        let result = write(&mut out)
            .and_then(|()| {
                if content_type.ends_with("json") {
                    out.write_all(b"\n")
                } else {
                    Ok(())
                }
            })
            .and_then(|()| out.flush());
        if let Err(e) = result
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            tracing::error!(error = %e, "a streamed response body failed");
            let _ = out.sender.blocking_send(Err(e));
        }
    });
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .streaming(body)
}

/// `value` as compact JSON (what `HttpResponse::json` sends), streamed.
pub fn json<T: serde::Serialize + Send + 'static>(value: T) -> HttpResponse {
    streamed("application/json", move |out| {
        serde_json::to_writer(out, &value).map_err(std::io::Error::other)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_fill_before_they_are_sent() {
        let (sender, mut receiver) = mpsc::channel(16);
        let mut out = ChunkWriter {
            buffer: Vec::new(),
            sender,
        };
        out.write_all(&vec![b'a'; CHUNK - 1]).unwrap();
        assert!(receiver.try_recv().is_err(), "not full yet");
        out.write_all(b"bc").unwrap();
        assert_eq!(receiver.try_recv().unwrap().unwrap().len(), CHUNK + 1);
        out.write_all(b"d").unwrap();
        out.flush().unwrap();
        assert_eq!(&receiver.try_recv().unwrap().unwrap()[..], b"d");
        out.flush().unwrap();
        assert!(receiver.try_recv().is_err(), "an empty flush sends nothing");
    }
}
