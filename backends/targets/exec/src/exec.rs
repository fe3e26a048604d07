//! [`ExecTarget`]: a plugin process behind the [`Target`] trait.

use plumb_core::{Attrs, Owner, ResolvedAttrs};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plumb_core::target::{
    Change, Content, Digest, DigestKind, ObserveRequest, Observed, Target, TargetError, TargetPath,
};

use crate::error::{ExecError, Violation};
use crate::io::{Event, StderrSink, WriteJob, spawn_reader, spawn_stderr, spawn_writer};
use crate::protocol::{
    ApplyOp, MAX_LINE, Message, Observation, ObserveItem, PROTOCOL_VERSION, Request,
};

/// The environment variable that sets the default timeout, in seconds.
pub const TIMEOUT_ENV: &str = "PLUMB_PLUGIN_TIMEOUT";

/// The timeout when neither the options nor the environment set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Drop`] waits for the plugin to exit after `bye`.
const BYE_GRACE: Duration = Duration::from_secs(2);

/// How long to wait for the exit status of a plugin whose output ended.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// The most paths in one `observe` or `recover` request (lines are also
/// kept under the protocol's line limit).
const MAX_BATCH: usize = 4096;

/// How to start a plugin.
#[derive(Default)]
pub struct SpawnOptions {
    /// How long to wait for each response without progress; `None` for
    /// `$PLUMB_PLUGIN_TIMEOUT` seconds, or 30 seconds without it.
    pub timeout: Option<Duration>,
    /// Where the plugin's standard error goes, prefixed; `None` for this
    /// process's standard error.
    pub stderr: Option<Box<dyn Write + Send>>,
}

impl SpawnOptions {
    /// Options with a fixed timeout, ignoring the environment.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            stderr: None,
        }
    }
}

/// What a plugin said it can do in its `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// `dir`: directories exist.
    pub dir: bool,
    /// `symlink`: symbolic links exist.
    pub symlink: bool,
    /// `executable`: files have an executable bit.
    pub executable: bool,
    /// `attrs`: files and directories have a mode, a uid and a gid.
    pub attrs: bool,
}

/// A target carried out by a plugin program (`spec/plugin-protocol.md`).
///
/// Dropping it says `bye`, waits up to two seconds for the plugin to exit,
/// then kills it.
pub struct ExecTarget {
    command_line: String,
    child: Child,
    jobs: Option<Sender<WriteJob>>,
    events: Receiver<Event>,
    timeout: Duration,
    name: Arc<Mutex<String>>,
    plugin_name: String,
    capabilities: Capabilities,
    /// Why the plugin was given up on; every later call fails with it.
    broken: Option<String>,
}

impl std::fmt::Debug for ExecTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecTarget")
            .field("command_line", &self.command_line)
            .field("plugin_name", &self.plugin_name)
            .field("capabilities", &self.capabilities)
            .field("timeout", &self.timeout)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// The timeout `$PLUMB_PLUGIN_TIMEOUT` sets, or the default.
pub fn timeout_from_env() -> Result<Duration, ExecError> {
    match std::env::var(TIMEOUT_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_TIMEOUT),
        Err(std::env::VarError::NotUnicode(_)) => Err(ExecError::TimeoutNotUtf8 {
            variable: TIMEOUT_ENV,
        }),
        Ok(text) => parse_timeout(&text).ok_or(ExecError::BadTimeout {
            variable: TIMEOUT_ENV,
            value: text,
        }),
    }
}

fn parse_timeout(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    if secs.is_finite() && secs > 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

impl ExecTarget {
    /// Starts `command_line` (split like a shell would, run without one) in
    /// `cwd` and does the handshake, with the timeout from the environment.
    pub fn spawn(command_line: &str, cwd: impl AsRef<Path>) -> Result<ExecTarget, TargetError> {
        Self::spawn_with(command_line, cwd, SpawnOptions::default())
    }

    /// [`spawn`](Self::spawn) with options.
    pub fn spawn_with(
        command_line: &str,
        cwd: impl AsRef<Path>,
        options: SpawnOptions,
    ) -> Result<ExecTarget, TargetError> {
        let fail = |e: ExecError| TargetError::target(format!("exec:{command_line}"), e);
        let timeout = match options.timeout {
            Some(t) => t,
            None => timeout_from_env().map_err(fail)?,
        };
        let words = shlex::split(command_line).ok_or_else(|| fail(ExecError::BadCommandLine))?;
        let Some((program, args)) = words.split_first() else {
            return Err(fail(ExecError::NoProgram));
        };
        let mut child = Command::new(program)
            .args(args)
            .current_dir(cwd.as_ref())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| {
                fail(ExecError::Spawn {
                    program: program.clone(),
                    source,
                })
            })?;

        let initial_name = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.clone());
        let name = Arc::new(Mutex::new(initial_name.clone()));
        let sink: StderrSink = Arc::new(Mutex::new(
            options
                .stderr
                .unwrap_or_else(|| Box::new(std::io::stderr())),
        ));
        let (event_tx, events) = mpsc::channel();
        let (jobs, job_rx) = mpsc::channel();
        let no_pipe = |which| ExecError::NoPipe { which };
        let started = (|| {
            let stdin = child.stdin.take().ok_or(no_pipe("to the plugin's input"))?;
            let stdout = child
                .stdout
                .take()
                .ok_or(no_pipe("from the plugin's output"))?;
            let stderr = child
                .stderr
                .take()
                .ok_or(no_pipe("from the plugin's errors"))?;
            spawn_reader(stdout, event_tx.clone()).map_err(ExecError::Thread)?;
            spawn_writer(stdin, job_rx, event_tx).map_err(ExecError::Thread)?;
            spawn_stderr(stderr, Arc::clone(&name), sink).map_err(ExecError::Thread)?;
            Ok::<(), ExecError>(())
        })();
        let mut target = ExecTarget {
            command_line: command_line.to_owned(),
            child,
            jobs: Some(jobs),
            events,
            timeout,
            name,
            plugin_name: initial_name,
            capabilities: Capabilities::default(),
            broken: None,
        };
        if let Err(e) = started {
            return Err(target.fail(e));
        }
        target.handshake()?;
        Ok(target)
    }

    /// The plugin's name, from its `hello`.
    pub fn name(&self) -> &str {
        &self.plugin_name
    }

    /// What the plugin said it can do.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The timeout for each response.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the timeout for each response from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The plugin's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn handshake(&mut self) -> Result<(), TargetError> {
        self.send(
            Request::Hello {
                protocols: vec![PROTOCOL_VERSION],
                client: format!("plumb {}", env!("CARGO_PKG_VERSION")),
            },
            None,
        )?;
        match self.next_message("hello")? {
            Message::Hello {
                protocol,
                name,
                capabilities,
            } => {
                if protocol != PROTOCOL_VERSION {
                    return Err(self.fail(
                        Violation::Version {
                            chosen: protocol,
                            offered: PROTOCOL_VERSION,
                        }
                        .into(),
                    ));
                }
                for c in &capabilities {
                    match c.as_str() {
                        "dir" => self.capabilities.dir = true,
                        "symlink" => self.capabilities.symlink = true,
                        "executable" => self.capabilities.executable = true,
                        "attrs" => self.capabilities.attrs = true,
                        _ => {}
                    }
                }
                if let Ok(mut n) = self.name.lock() {
                    n.clone_from(&name);
                }
                self.plugin_name = name;
                Ok(())
            }
            other => Err(self.unexpected("hello", &other)),
        }
    }

    fn target_error(&self, e: ExecError) -> TargetError {
        TargetError::target(self.describe(), e)
    }

    /// Gives up on the plugin: kills it and remembers why.
    fn fail(&mut self, e: ExecError) -> TargetError {
        if self.broken.is_none() {
            self.jobs = None;
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.broken = Some(e.to_string());
        }
        self.target_error(e)
    }

    fn check_alive(&self) -> Result<(), TargetError> {
        match &self.broken {
            Some(earlier) => Err(self.target_error(ExecError::Unusable {
                earlier: earlier.clone(),
            })),
            None => Ok(()),
        }
    }

    fn unexpected(&mut self, wanted: &str, got: &Message) -> TargetError {
        let what = match got {
            Message::Observed { path, .. }
            | Message::Content { path, .. }
            | Message::Ok {
                path: Some(path), ..
            }
            | Message::Error {
                path: Some(path), ..
            } => format!("{} for {path}", got.type_name()),
            _ => got.type_name().to_owned(),
        };
        self.fail(
            Violation::Unexpected {
                wanted: wanted.to_owned(),
                got: what,
            }
            .into(),
        )
    }

    /// Queues a request line and, for a `write`, its content.
    fn send(&mut self, request: Request, content: Option<Vec<u8>>) -> Result<(), TargetError> {
        let line = request.encode();
        let Some(jobs) = &self.jobs else {
            return Err(self.target_error(ExecError::InputClosed));
        };
        let mut ok = jobs.send(line).is_ok();
        if let Some(content) = content {
            ok = ok && jobs.send(content).is_ok();
        }
        if ok {
            Ok(())
        } else {
            // The writer ended: the plugin stopped reading. The reader will
            // say why (it exited, most likely); look there first.
            match self.next_event() {
                Ok(_) => Err(self.fail(ExecError::StoppedReading)),
                Err(e) => Err(e),
            }
        }
    }

    /// Waits for the next event that is not write progress, restarting the
    /// timeout whenever anything happens.
    fn next_event(&mut self) -> Result<Event, TargetError> {
        let mut write_error = None;
        loop {
            match self.events.recv_timeout(self.timeout) {
                Ok(Event::Wrote) => {}
                Ok(Event::WriteError(e)) => write_error = Some(e),
                Ok(Event::Eof { mid_message }) => {
                    let status = self.exit_status();
                    let at = if mid_message {
                        "in the middle of a message"
                    } else {
                        "before answering"
                    };
                    return Err(self.fail(ExecError::Ended {
                        how: status,
                        when: Some(at),
                    }));
                }
                Ok(Event::ReadError(e)) => return Err(self.fail(ExecError::Read(e))),
                Ok(Event::Violation(e)) => return Err(self.fail(Violation::from(e).into())),
                Ok(ev @ (Event::Message(_) | Event::Bytes(_))) => return Ok(ev),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.fail(ExecError::Timeout {
                        after: self.timeout,
                        write: write_error,
                    }));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.exit_status();
                    return Err(self.fail(ExecError::Ended {
                        how: status,
                        when: None,
                    }));
                }
            }
        }
    }

    /// The next whole message; raw bytes here are a violation.
    fn next_message(&mut self, wanted: &str) -> Result<Message, TargetError> {
        match self.next_event()? {
            Event::Message(Message::Error {
                path: None,
                message,
            }) => Err(self.fail(ExecError::Failed { message })),
            Event::Message(m) => Ok(m),
            _ => Err(self.fail(
                Violation::RawBytes {
                    wanted: wanted.to_owned(),
                }
                .into(),
            )),
        }
    }

    /// How the plugin ended, in words, for a plugin whose output closed.
    fn exit_status(&mut self) -> String {
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return format!("exited ({status})"),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return "closed its output".into(),
            }
        }
    }

    /// Reads the answer for one path: `expected` or an `error` for it.
    fn answer_for(
        &mut self,
        path: &TargetPath,
        wanted: &str,
    ) -> Result<Result<Message, TargetError>, TargetError> {
        let message = self.next_message(wanted)?;
        match &message {
            Message::Error {
                path: Some(p),
                message: text,
            } if p == path => Ok(Err(TargetError::path(
                path,
                ExecError::AtPath {
                    message: text.clone(),
                },
            ))),
            Message::Observed { path: p, .. }
            | Message::Content { path: p, .. }
            | Message::Ok { path: Some(p) }
                if p == path && message.type_name() == wanted =>
            {
                Ok(Ok(message))
            }
            _ => Err(self.unexpected(&format!("{wanted} or error for {path}"), &message)),
        }
    }

    fn observe_batch(
        &mut self,
        items: Vec<ObserveItem>,
        out: &mut Vec<Result<Observed, TargetError>>,
    ) -> Result<(), TargetError> {
        let paths: Vec<(TargetPath, bool, bool)> = items
            .iter()
            .map(|i| (i.path.clone(), i.digest, i.list))
            .collect();
        self.send(Request::Observe { requests: items }, None)?;
        for (path, digest, list) in paths {
            let result = match self.answer_for(&path, "observed")? {
                Err(e) => Err(e),
                Ok(Message::Observed { observation, .. }) => {
                    Ok(self.convert(&path, observation, digest, list)?)
                }
                Ok(other) => return Err(self.unexpected("observed", &other)),
            };
            out.push(result);
        }
        Ok(())
    }

    fn convert(
        &mut self,
        path: &TargetPath,
        observation: Observation,
        digest: bool,
        list: bool,
    ) -> Result<Observed, TargetError> {
        Ok(match observation {
            Observation::Missing => Observed::Missing,
            Observation::File {
                size,
                executable,
                sha256,
                token,
                attrs,
            } => {
                if digest && sha256.is_none() {
                    return Err(self.fail(
                        Violation::Missing {
                            what: "sha256",
                            path: path.clone(),
                            were: "was",
                        }
                        .into(),
                    ));
                }
                Observed::File {
                    size,
                    executable,
                    digest: sha256.map(Digest::Sha256),
                    token: token.map(String::into_bytes),
                    attrs: self.reported(attrs),
                }
            }
            Observation::Symlink { target } => Observed::Symlink { target },
            Observation::Dir { children, attrs } => {
                if list && children.is_none() {
                    return Err(self.fail(
                        Violation::Missing {
                            what: "children",
                            path: path.clone(),
                            were: "were",
                        }
                        .into(),
                    ));
                }
                Observed::Dir {
                    children: children.map(|mut c| {
                        c.sort();
                        c
                    }),
                    attrs: self.reported(attrs),
                }
            }
            Observation::Other { what } => Observed::Other { what },
            Observation::Blocked { at, what } => Observed::Blocked { at, what },
        })
    }

    /// `attrs` when the plugin has the `attrs` capability, else none: a
    /// plugin without it is never sent attributes, and what it reports of
    /// them is ignored.
    fn reported(&self, attrs: ResolvedAttrs) -> ResolvedAttrs {
        if self.capabilities.attrs {
            attrs
        } else {
            ResolvedAttrs::default()
        }
    }

    /// Makes one change; `Ok(Err(..))` is a failure of that change alone.
    fn apply_one(
        &mut self,
        change: &Change,
        content: &dyn Content,
    ) -> Result<Result<(), TargetError>, TargetError> {
        let path = change.path().clone();
        let refuse = |e: ExecError| Ok(Err(TargetError::path(change.path(), e)));
        let lacks = |what| refuse(ExecError::Unsupported { what });
        let caps = self.capabilities;
        let (op, data) = match change {
            Change::WriteFile {
                blob,
                size,
                executable,
                attrs,
                ..
            } => {
                if *executable && !caps.executable {
                    return lacks("executable files");
                }
                let data = match content.get(blob) {
                    Ok(d) => d,
                    Err(e) => return Ok(Err(e)),
                };
                if data.len() as u64 != *size {
                    return refuse(ExecError::WrongSize {
                        blob: *blob,
                        actual: data.len() as u64,
                        expected: *size,
                    });
                }
                (
                    ApplyOp::Write {
                        size: *size,
                        executable: *executable,
                        attrs: self.reported(*attrs),
                    },
                    Some(data),
                )
            }
            Change::Symlink { target, .. } => {
                if !caps.symlink {
                    return lacks("symlinks");
                }
                (
                    ApplyOp::Symlink {
                        target: target.clone(),
                    },
                    None,
                )
            }
            Change::MakeDir { .. } | Change::RemoveDir { .. } if !caps.dir => {
                return lacks("directories");
            }
            Change::MakeDir { attrs, .. } => (
                ApplyOp::MakeDir {
                    attrs: self.reported(*attrs),
                },
                None,
            ),
            Change::RemoveDir { .. } => (ApplyOp::RemoveDir, None),
            Change::Remove { .. } => (ApplyOp::Remove, None),
        };
        let request = Request::Apply {
            path: path.clone(),
            op,
        };
        if request.encode().len() > MAX_LINE + 1 {
            return refuse(ExecError::TooLong);
        }
        self.send(request, data)?;
        Ok(self.answer_for(&path, "ok")?.map(drop))
    }
}

impl Target for ExecTarget {
    fn describe(&self) -> String {
        format!("exec:{}", self.command_line)
    }

    fn supports_attrs(&self) -> bool {
        self.capabilities.attrs
    }

    /// Numbers only: a plugin may run against another machine's users, so
    /// plumb does not resolve names for it, and the protocol has no
    /// message to ask it to.
    fn resolve_attrs(&mut self, attrs: &Attrs) -> Result<ResolvedAttrs, TargetError> {
        let id = |o: &Option<Owner>| match o {
            None => Ok(None),
            Some(Owner::Id(n)) => Ok(Some(*n)),
            Some(Owner::Name(name)) => Err(TargetError::target(
                self.describe(),
                ExecError::NamedOwner { name: name.clone() },
            )),
        };
        Ok(ResolvedAttrs {
            mode: attrs.mode,
            uid: id(&attrs.owner)?,
            gid: id(&attrs.group)?,
        })
    }

    fn digest_kind(&self) -> DigestKind {
        DigestKind::Sha256
    }

    fn observe(
        &mut self,
        requests: &[ObserveRequest],
    ) -> Result<Vec<Result<Observed, TargetError>>, TargetError> {
        self.check_alive()?;
        let mut out = Vec::with_capacity(requests.len());
        let mut batch = Vec::new();
        let mut batch_len = 64;
        for r in requests {
            let item = ObserveItem {
                path: r.path.clone(),
                digest: r.digest,
                list: r.list,
            };
            // The item's own encoding, with room for the JSON around it.
            let len = Request::Observe {
                requests: vec![item.clone()],
            }
            .encode()
            .len();
            if len > MAX_LINE - 64 {
                if !batch.is_empty() {
                    self.observe_batch(std::mem::take(&mut batch), &mut out)?;
                    batch_len = 64;
                }
                out.push(Err(TargetError::path(&r.path, ExecError::TooLong)));
                continue;
            }
            if !batch.is_empty() && (batch_len + len > MAX_LINE || batch.len() >= MAX_BATCH) {
                self.observe_batch(std::mem::take(&mut batch), &mut out)?;
                batch_len = 64;
            }
            batch_len += len;
            batch.push(item);
        }
        if !batch.is_empty() {
            self.observe_batch(batch, &mut out)?;
        }
        Ok(out)
    }

    fn recover(&mut self, paths: &[TargetPath]) -> Result<(), TargetError> {
        self.check_alive()?;
        let mut rest = paths;
        while !rest.is_empty() {
            // Fill a line up to the limit.
            let mut n = 0;
            let mut len = 64;
            while n < rest.len() && n < MAX_BATCH {
                let one = crate::protocol::bytes_value(rest[n].as_bytes())
                    .to_string()
                    .len()
                    + 1;
                if n > 0 && len + one > MAX_LINE {
                    break;
                }
                len += one;
                n += 1;
            }
            let (batch, next) = rest.split_at(n);
            rest = next;
            if len > MAX_LINE {
                return Err(TargetError::path(&batch[0], ExecError::TooLong));
            }
            self.send(
                Request::Recover {
                    paths: batch.to_vec(),
                },
                None,
            )?;
            match self.next_message("ok")? {
                Message::Ok { path: None } => {}
                Message::Error {
                    path: Some(path),
                    message,
                } if batch.contains(&path) => {
                    return Err(TargetError::path(&path, ExecError::AtPath { message }));
                }
                other => return Err(self.unexpected("ok or error for recover", &other)),
            }
        }
        Ok(())
    }

    fn read(&mut self, path: &TargetPath) -> Result<Vec<u8>, TargetError> {
        self.check_alive()?;
        if (Request::Read { path: path.clone() }).encode().len() > MAX_LINE + 1 {
            return Err(TargetError::path(path, ExecError::TooLong));
        }
        self.send(Request::Read { path: path.clone() }, None)?;
        let size = match self.answer_for(path, "content")? {
            Err(e) => return Err(e),
            Ok(Message::Content { size, .. }) => size,
            Ok(other) => return Err(self.unexpected("content", &other)),
        };
        // Grow with what arrives rather than trusting `size` up front.
        let mut data = Vec::with_capacity(usize::try_from(size.min(1 << 20)).unwrap_or(0));
        while (data.len() as u64) < size {
            match self.next_event()? {
                Event::Bytes(chunk) => data.extend_from_slice(&chunk),
                _ => {
                    return Err(
                        self.fail(Violation::MessageInContent { path: path.clone() }.into())
                    );
                }
            }
        }
        Ok(data)
    }

    fn apply(
        &mut self,
        changes: &[Change],
        content: &dyn Content,
        done: &mut dyn FnMut(usize, Result<(), TargetError>),
    ) -> Result<(), TargetError> {
        self.check_alive()?;
        for (i, change) in changes.iter().enumerate() {
            let outcome = self.apply_one(change, content)?;
            done(i, outcome);
        }
        Ok(())
    }
}

impl Drop for ExecTarget {
    fn drop(&mut self) {
        if self.broken.is_none() {
            if let Some(jobs) = self.jobs.take() {
                let _ = jobs.send(Request::Bye.encode());
                // Dropping the sender ends the writer, closing the input.
            }
            let deadline = Instant::now() + BYE_GRACE;
            while Instant::now() < deadline {
                match self.child.try_wait() {
                    Ok(Some(_)) | Err(_) => return,
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_seconds() {
        assert_eq!(parse_timeout("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_timeout(" 0.5 "), Some(Duration::from_millis(500)));
        for bad in ["0", "-1", "abc", "", "inf", "NaN", "1e300"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }
}
