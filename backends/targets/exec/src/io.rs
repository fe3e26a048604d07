//! The threads around a plugin process: one reads and frames its output,
//! one writes requests to its input, one passes its standard error through.
//! The reader and writer report to one channel, so the caller can wait for
//! the next message with a timeout that restarts on any progress.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::protocol::{CHUNK, MAX_LINE, Message, ProtocolError, decode_message};

/// What the reader and writer threads report.
#[derive(Debug)]
pub(crate) enum Event {
    /// A whole message from the plugin.
    Message(Message),
    /// A chunk of the raw bytes after a `content` message.
    Bytes(Vec<u8>),
    /// The plugin's output ended (the plugin exited or closed it).
    Eof {
        /// Where it ended: between messages or inside one.
        mid_message: bool,
    },
    /// Reading the plugin's output failed.
    ReadError(std::io::Error),
    /// The plugin wrote something that is not a message.
    Violation(ProtocolError),
    /// A chunk of a request reached the plugin.
    Wrote,
    /// Writing to the plugin failed (it stopped reading or exited).
    WriteError(std::io::Error),
}

/// Starts the thread that frames the plugin's output into events.
pub(crate) fn spawn_reader(stdout: ChildStdout, events: Sender<Event>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("plumb-exec-reader".into())
        .spawn(move || read_loop(BufReader::with_capacity(CHUNK, stdout), &events))
        .map(drop)
}

fn read_loop(mut input: impl BufRead, events: &Sender<Event>) {
    loop {
        let line = match read_line(&mut input) {
            Ok(Line::Eof { mid_line }) => {
                let _ = events.send(Event::Eof {
                    mid_message: mid_line,
                });
                return;
            }
            Ok(Line::TooLong) => {
                let _ = events.send(Event::Violation(ProtocolError::TooLong {
                    len: MAX_LINE + 1,
                    max: MAX_LINE,
                }));
                return;
            }
            Ok(Line::Whole(line)) => line,
            Err(e) => {
                let _ = events.send(Event::ReadError(e));
                return;
            }
        };
        let message = match decode_message(&line) {
            Ok(m) => m,
            Err(e) => {
                let _ = events.send(Event::Violation(e));
                return;
            }
        };
        let raw = match &message {
            Message::Content { size, .. } => *size,
            _ => 0,
        };
        if events.send(Event::Message(message)).is_err() {
            return;
        }
        let mut left = raw;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK);
            let mut chunk = vec![0u8; want];
            match input.read(&mut chunk) {
                Ok(0) => {
                    let _ = events.send(Event::Eof { mid_message: true });
                    return;
                }
                Ok(n) => {
                    chunk.truncate(n);
                    left -= n as u64;
                    if events.send(Event::Bytes(chunk)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = events.send(Event::ReadError(e));
                    return;
                }
            }
        }
    }
}

enum Line {
    Whole(Vec<u8>),
    Eof { mid_line: bool },
    TooLong,
}

/// Reads up to and including a line feed, giving up past [`MAX_LINE`].
fn read_line(input: &mut impl BufRead) -> std::io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(Line::Eof {
                mid_line: !line.is_empty(),
            });
        }
        let (take, found) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        input.consume(take);
        // The limit excludes the line feed.
        if line.len() - usize::from(found) > MAX_LINE {
            return Ok(Line::TooLong);
        }
        if found {
            return Ok(Line::Whole(line));
        }
    }
}

/// What the writer thread is handed: bytes to write in order.
pub(crate) type WriteJob = Vec<u8>;

/// Starts the thread that writes requests to the plugin in [`CHUNK`]s,
/// reporting each chunk written. It ends, closing the plugin's input, when
/// its job channel is dropped or a write fails.
pub(crate) fn spawn_writer(
    mut stdin: ChildStdin,
    jobs: Receiver<WriteJob>,
    events: Sender<Event>,
) -> std::io::Result<()> {
    thread::Builder::new()
        .name("plumb-exec-writer".into())
        .spawn(move || {
            for job in jobs {
                for chunk in job.chunks(CHUNK) {
                    if let Err(e) = stdin.write_all(chunk).and_then(|()| stdin.flush()) {
                        let _ = events.send(Event::WriteError(e));
                        return;
                    }
                    // Progress only; nobody may be waiting.
                    let _ = events.send(Event::Wrote);
                }
            }
        })
        .map(drop)
}

/// Where the plugin's standard error goes, prefixed line by line.
pub(crate) type StderrSink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Starts the thread that copies the plugin's standard error to `sink`,
/// each line prefixed with `[NAME] ` (the name as it is when the line
/// arrives).
pub(crate) fn spawn_stderr(
    stderr: ChildStderr,
    name: Arc<Mutex<String>>,
    sink: StderrSink,
) -> std::io::Result<()> {
    thread::Builder::new()
        .name("plumb-exec-stderr".into())
        .spawn(move || {
            let mut input = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                // Long lines are cut into pieces rather than buffered whole.
                match (&mut input).take(CHUNK as u64).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                let prefix = match name.lock() {
                    Ok(n) => format!("[{n}] "),
                    Err(_) => "[plugin] ".to_owned(),
                };
                if let Ok(mut out) = sink.lock() {
                    let _ = out
                        .write_all(prefix.as_bytes())
                        .and_then(|()| out.write_all(&line))
                        .and_then(|()| out.flush());
                }
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    fn events_of(input: &[u8]) -> Vec<String> {
        let (tx, rx) = channel();
        read_loop(BufReader::with_capacity(7, input), &tx);
        drop(tx);
        rx.iter()
            .map(|e| match e {
                Event::Message(m) => m.type_name().to_owned(),
                Event::Bytes(b) => format!("bytes:{}", String::from_utf8_lossy(&b)),
                Event::Eof { mid_message } => format!("eof:{mid_message}"),
                Event::Violation(v) => format!("violation:{v}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn frames_lines_and_raw_content() {
        let input = b"{\"type\":\"content\",\"path\":\"f\",\"size\":3}\nx\ny{\"type\":\"ok\"}\n";
        assert_eq!(
            events_of(input),
            ["content", "bytes:x\ny", "ok", "eof:false"]
        );
        assert_eq!(
            events_of(b"{\"type\":\"content\",\"path\":\"f\",\"size\":9}\nab"),
            ["content", "bytes:ab", "eof:true"]
        );
        assert_eq!(events_of(b"{\"type\":\"ok\"}"), ["eof:true"]);
    }

    #[test]
    fn gives_up_on_long_lines_and_garbage() {
        let mut long = vec![b'x'; MAX_LINE + 10];
        long.push(b'\n');
        let got = events_of(&long);
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("violation:line longer than"), "{got:?}");
        let got = events_of(b"hello\n{\"type\":\"ok\"}\n");
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("violation:not JSON"), "{got:?}");
        // Exactly at the limit is fine (the decoder then sees spaces: not JSON,
        // but not too long either).
        let mut edge = vec![b' '; MAX_LINE];
        edge.push(b'\n');
        let got = events_of(&edge);
        assert!(got[0].starts_with("violation:not JSON"), "{got:?}");
    }
}
