//! `herald import`: bulk publishing from a file through the batch API (issue 12).
//!
//! The file holds one `node,commit` pair per line, as CSV or as JSON lines; the format is
//! decided per file by its first line that is neither blank nor a `#` comment:
//!
//! - JSON lines when it starts with `{`: `{"node": "n1", "commit": "<hex>"}` per line;
//! - CSV otherwise: `node,commit` per line, optionally after a header line `node,commit`. Fields
//!   may be surrounded by spaces or double quotes.
//!
//! Blank lines and lines starting with `#` are skipped in both. Every line is checked (node
//! label, commit, no node twice) before the first request, so a bad file publishes nothing.
//!
//! The nodes are then published in chunks of [`ImportOptions::chunk`], one
//! `POST /v1/zones/{zone}/batch` each, which the API applies all or nothing. A failed chunk
//! stops the import with [`ImportError::Chunk`]: the chunks before it stay published, and the
//! error says how far they reached. Running again with [`ImportOptions::skip_unchanged`] first
//! reads the zone's nodes and leaves out those that already have their commit, so the rerun
//! publishes only what is missing (a publish of an unchanged commit would raise its seq and
//! wake its watchers again).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::client::{AdminClient, ClientError};
use super::types::{BatchRequest, BatchSet};
use crate::record::{Commit, NodeLabel, RecordError, normalize_zone};

/// Nodes per batch request when `--chunk` is not given.
pub const DEFAULT_CHUNK: usize = 10_000;

/// Page size of the read of the zone's current nodes (the API's largest).
const PAGE: usize = 1000;

/// What `herald import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The zone, with or without the trailing dot.
    pub zone: String,
    pub file: PathBuf,
    /// Nodes per batch request ([`DEFAULT_CHUNK`] by default); at least 1.
    pub chunk: usize,
    /// Leave out nodes that already have the commit (a resumed run publishes nothing twice).
    pub skip_unchanged: bool,
    /// Draw a progress bar (on a terminal) instead of log lines.
    pub progress: bool,
}

/// How the file was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    #[default]
    Csv,
    JsonLines,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Csv => "CSV",
            Self::JsonLines => "JSON lines",
        })
    }
}

/// What an import did. Its `Display` is the one-line summary `herald import` prints.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// The zone, in the API's form (lowercase, no trailing dot).
    pub zone: String,
    pub format: Format,
    /// Nodes in the file.
    pub nodes: u64,
    /// Nodes published.
    pub published: u64,
    /// Nodes left out because they already had their commit (`skip_unchanged`).
    pub skipped: u64,
    /// Batch requests made.
    pub chunks: u64,
    /// The zone's serial after the last chunk; `None` when nothing was published.
    pub serial: Option<u32>,
    /// Wall time of the whole import, reading the file included.
    pub seconds: f64,
    /// Nodes published per second while publishing.
    pub per_second: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "published {} of {} nodes to {} in {} chunk{}",
            self.published,
            self.nodes,
            self.zone,
            self.chunks,
            if self.chunks == 1 { "" } else { "s" }
        )?;
        if self.skipped > 0 {
            write!(f, ", skipped {} unchanged", self.skipped)?;
        }
        write!(f, ", {:.1} s", self.seconds)?;
        if self.published > 0 {
            write!(f, ", {:.0}/s", self.per_second)?;
        }
        if let Some(serial) = self.serial {
            write!(f, ", serial {serial}")?;
        }
        Ok(())
    }
}

/// Why an import stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImportError {
    /// `chunk` was 0.
    #[error("the chunk size must be at least 1")]
    ChunkSize,
    /// The zone name is not a domain name.
    #[error(transparent)]
    Zone(RecordError),
    /// The file could not be opened or read.
    #[error("cannot read {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        cause: io::Error,
    },
    /// A line of the file is not a valid `node,commit` pair; nothing was published.
    #[error("{}: line {line}", file.display())]
    Line {
        file: PathBuf,
        /// 1-based, counting blank and comment lines.
        line: usize,
        #[source]
        problem: LineError,
    },
    /// The zone's current nodes could not be read (`skip_unchanged`); nothing was published.
    #[error("cannot read the current nodes of {zone}")]
    Current {
        zone: String,
        #[source]
        cause: ClientError,
    },
    /// A batch request failed. The chunks before it are published; this one is not, unless the
    /// connection broke after the API had applied it (a rerun with `skip_unchanged` is right
    /// either way).
    #[error("{}", chunk_failure(self))]
    Chunk {
        /// 1-based.
        chunk: usize,
        /// Chunks in the import.
        chunks: usize,
        /// The file lines of the failed chunk's first and last nodes.
        first_line: usize,
        last_line: usize,
        /// Nodes published by the chunks before it.
        published: u64,
        /// The last line of the chunks before it: every node up to here is published (or was
        /// skipped as unchanged). `None` when no chunk was published.
        through_line: Option<usize>,
        #[source]
        cause: ClientError,
    },
}

/// The message of [`ImportError::Chunk`], without its cause.
fn chunk_failure(e: &ImportError) -> String {
    let ImportError::Chunk {
        chunk,
        chunks,
        first_line,
        last_line,
        published,
        through_line,
        ..
    } = e
    else {
        unreachable!("only for ImportError::Chunk")
    };
    let failed = format!("chunk {chunk} of {chunks} (lines {first_line}-{last_line}) failed");
    match through_line {
        Some(through) => {
            let done = chunk - 1;
            format!(
                "{failed} after {done} chunk{} with {published} nodes, up to line {through}, \
                 were published; rerun with --skip-unchanged to resume",
                if done == 1 { "" } else { "s" }
            )
        }
        None => format!("{failed}; nothing was published"),
    }
}

/// What is wrong with one line of the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LineError {
    #[error("the line is not valid UTF-8")]
    Utf8,
    /// A CSV line without exactly two fields.
    #[error("expected node,commit but found {0} field(s)")]
    Fields(usize),
    /// A JSON line that is not `{"node": …, "commit": …}`.
    #[error("expected a JSON object {{\"node\": …, \"commit\": …}}")]
    Json(#[source] serde_json::Error),
    /// A bad node label or commit; the message says which.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The node is on an earlier line too.
    #[error("node {node} is already on line {first}")]
    Duplicate { node: String, first: usize },
}

/// One node of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    pub node: NodeLabel,
    pub commit: Commit,
}

/// A checked file: every node once, in file order.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub format: Format,
    pub entries: Vec<Entry>,
}

/// A JSON line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    node: String,
    commit: String,
}

/// Reads and checks a whole file; the first bad line is the error.
pub fn read(file: &Path) -> Result<Input, ImportError> {
    let read_error = |cause| ImportError::Read {
        file: file.to_owned(),
        cause,
    };
    let f = File::open(file).map_err(read_error)?;
    parse(BufReader::new(f), file)
}

/// [`read`] of any reader; `file` names it in errors.
pub fn parse(mut reader: impl BufRead, file: &Path) -> Result<Input, ImportError> {
    let mut input = Input::default();
    let mut format = None;
    let mut first_line: HashMap<NodeLabel, usize> = HashMap::new();
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|cause| ImportError::Read {
                file: file.to_owned(),
                cause,
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        let at = |problem: LineError| ImportError::Line {
            file: file.to_owned(),
            line: number,
            problem,
        };
        let mut bytes = buf.as_slice();
        if number == 1 {
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| at(LineError::Utf8))?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let format = match format {
            Some(f) => f,
            None => {
                let f = if text.starts_with('{') {
                    Format::JsonLines
                } else {
                    Format::Csv
                };
                format = Some(f);
                input.format = f;
                if f == Format::Csv && is_header(text) {
                    continue;
                }
                f
            }
        };
        let (node, commit) = match format {
            Format::Csv => csv_fields(text).map_err(at)?,
            Format::JsonLines => {
                let line: JsonLine = serde_json::from_str(text)
                    .map_err(LineError::Json)
                    .map_err(at)?;
                (line.node, line.commit)
            }
        };
        let node = NodeLabel::try_from(node)
            .map_err(LineError::from)
            .map_err(at)?;
        let commit = Commit::try_from(commit)
            .map_err(LineError::from)
            .map_err(at)?;
        if let Some(&first) = first_line.get(&node) {
            return Err(at(LineError::Duplicate {
                node: node.to_string(),
                first,
            }));
        }
        first_line.insert(node.clone(), number);
        input.entries.push(Entry {
            line: number,
            node,
            commit,
        });
    }
    Ok(input)
}

/// Whether a CSV line is the header `node,commit`.
fn is_header(text: &str) -> bool {
    csv_fields(text)
        .is_ok_and(|(n, c)| n.eq_ignore_ascii_case("node") && c.eq_ignore_ascii_case("commit"))
}

/// The two fields of a CSV line, trimmed and unquoted.
fn csv_fields(text: &str) -> Result<(String, String), LineError> {
    let fields: Vec<&str> = text.split(',').collect();
    let [node, commit] = fields.as_slice() else {
        return Err(LineError::Fields(fields.len()));
    };
    let clean = |f: &str| {
        let f = f.trim();
        f.strip_prefix('"')
            .and_then(|f| f.strip_suffix('"'))
            .unwrap_or(f)
            .trim()
            .to_owned()
    };
    Ok((clean(node), clean(commit)))
}

/// Runs an import: reads and checks the file, leaves out unchanged nodes when asked, and
/// publishes the rest chunk by chunk, reporting progress on stderr.
pub fn run(client: &AdminClient, options: &ImportOptions) -> Result<Summary, ImportError> {
    let started = Instant::now();
    if options.chunk == 0 {
        return Err(ImportError::ChunkSize);
    }
    let zone = normalize_zone(&options.zone).map_err(ImportError::Zone)?;
    let input = read(&options.file)?;
    let mut summary = Summary {
        zone: zone.clone(),
        format: input.format,
        nodes: input.entries.len() as u64,
        ..Summary::default()
    };

    let todo: Vec<&Entry> = if options.skip_unchanged {
        let current = current_commits(client, &zone, options.progress)?;
        let todo: Vec<&Entry> = input
            .entries
            .iter()
            .filter(|e| current.get(e.node.as_str()).map(String::as_str) != Some(e.commit.as_str()))
            .collect();
        summary.skipped = (input.entries.len() - todo.len()) as u64;
        if !options.progress {
            say(&format!(
                "skipping {} of {} nodes that already have their commit",
                summary.skipped, summary.nodes
            ));
        }
        todo
    } else {
        input.entries.iter().collect()
    };

    let total = todo.len() as u64;
    let chunks: Vec<&[&Entry]> = todo.chunks(options.chunk).collect();
    let progress = Progress::new(options.progress, total);
    let publishing = Instant::now();
    let mut through_line = None;
    for (i, part) in chunks.iter().enumerate() {
        let (first_line, last_line) = (part[0].line, part[part.len() - 1].line);
        let request = BatchRequest {
            set: part
                .iter()
                .map(|e| BatchSet {
                    node: e.node.to_string(),
                    commit: e.commit.to_string(),
                })
                .collect(),
            delete: Vec::new(),
        };
        let answer = client.batch(&zone, &request).map_err(|cause| {
            progress.abandon();
            ImportError::Chunk {
                chunk: i + 1,
                chunks: chunks.len(),
                first_line,
                last_line,
                published: summary.published,
                through_line,
                cause,
            }
        })?;
        summary.published += part.len() as u64;
        summary.chunks += 1;
        summary.serial = Some(answer.serial);
        through_line = Some(last_line);
        progress.chunk(
            summary.published,
            first_line,
            last_line,
            publishing.elapsed(),
        );
    }
    progress.finish();
    summary.per_second = rate(summary.published, publishing.elapsed());
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Every node of the zone and its commit, read page by page.
fn current_commits(
    client: &AdminClient,
    zone: &str,
    progress: bool,
) -> Result<HashMap<String, String>, ImportError> {
    let spinner = progress.then(|| {
        let s = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} reading the nodes of {msg}: {human_pos}")
                .expect("a valid template"),
        );
        s.set_message(zone.to_owned());
        s.enable_steady_tick(Duration::from_millis(100));
        s
    });
    let mut current = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = client
            .nodes(zone, after.as_deref(), PAGE)
            .map_err(|cause| {
                if let Some(s) = &spinner {
                    s.abandon();
                }
                ImportError::Current {
                    zone: zone.to_owned(),
                    cause,
                }
            })?;
        if let Some(s) = &spinner {
            s.inc(page.nodes.len() as u64);
        }
        current.extend(page.nodes.into_iter().map(|n| (n.node, n.commit)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    Ok(current)
}

/// Nodes per second.
fn rate(nodes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { nodes as f64 / secs } else { 0.0 }
}

/// One line on stderr; a closed stderr is not an import error.
fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// A progress bar on a terminal, else one line per chunk.
enum Progress {
    Bar(ProgressBar),
    Lines { total: u64 },
}

impl Progress {
    fn new(bar: bool, total: u64) -> Self {
        if !bar {
            return Self::Lines { total };
        }
        let style = ProgressStyle::with_template(
            "{wide_bar} {human_pos}/{human_len} nodes  {per_sec:0}  {elapsed} elapsed, ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        let bar = ProgressBar::new(total).with_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        Self::Bar(bar)
    }

    fn chunk(&self, done: u64, first_line: usize, last_line: usize, elapsed: Duration) {
        match self {
            Self::Bar(bar) => bar.set_position(done),
            Self::Lines { total } => say(&format!(
                "imported {done}/{total} nodes (lines {first_line}-{last_line}), {:.0}/s",
                rate(done, elapsed)
            )),
        }
    }

    /// Leaves the bar where it stopped, for the error that follows.
    fn abandon(&self) {
        if let Self::Bar(bar) = self {
            bar.abandon();
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn parse_str(text: &str) -> Result<Input, ImportError> {
        parse(text.as_bytes(), Path::new("nodes.csv"))
    }

    fn pairs(input: &Input) -> Vec<(usize, &str, &str)> {
        input
            .entries
            .iter()
            .map(|e| (e.line, e.node.as_str(), e.commit.as_str()))
            .collect()
    }

    /// The error's message with its causes, as `herald` prints it.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }

    #[test]
    fn csv_with_header_comments_blanks_quotes_and_crlf() {
        let text = format!(
            "\u{feff}# exported today\r\n\r\nNode, Commit\r\nn1,{A}\r\n  \"N2\" , \"{B}\"\r\n# end\r\nweb-3,{A}"
        );
        let input = parse_str(&text).unwrap();
        assert_eq!(input.format, Format::Csv);
        assert_eq!(pairs(&input), [(4, "n1", A), (5, "n2", B), (7, "web-3", A)]);
    }

    #[test]
    fn header_only_counts_on_the_first_data_line() {
        let e = parse_str(&format!("n1,{A}\nnode,commit\n")).unwrap_err();
        assert_eq!(
            chain(&e),
            "nodes.csv: line 2: commit contains 'o'; only lowercase hex digits 0-9 and a-f are \
             allowed"
        );
    }

    #[test]
    fn json_lines() {
        let text = format!(
            "# comment\n{{\"node\": \"n1\", \"commit\": \"{A}\"}}\n\n{{\"commit\":\"{B}\",\"node\":\"N2\"}}\n"
        );
        let input = parse_str(&text).unwrap();
        assert_eq!(input.format, Format::JsonLines);
        assert_eq!(pairs(&input), [(2, "n1", A), (4, "n2", B)]);
    }

    #[test]
    fn bad_lines_are_named() {
        let cases = [
            (
                format!("n1,{A}\nn_2,{A}\n"),
                "nodes.csv: line 2: node name contains '_'; only a-z, 0-9 and '-' are allowed",
            ),
            (
                format!("n1,{A}\nn2\n"),
                "nodes.csv: line 2: expected node,commit but found 1 field(s)",
            ),
            (
                format!("n1,{A},x\n"),
                "nodes.csv: line 1: expected node,commit but found 3 field(s)",
            ),
            (
                format!("n1,{}\n", "ABCDEF0123".repeat(4)),
                "nodes.csv: line 1: commit contains 'A'; only lowercase hex digits 0-9 and a-f \
                 are allowed",
            ),
            (
                format!("n1,{A}\n\nN1,{B}\n"),
                "nodes.csv: line 3: node n1 is already on line 1",
            ),
            (
                format!("{{\"node\": \"n1\", \"commit\": \"{A}\"}}\nx,{A}\n"),
                "nodes.csv: line 2: expected a JSON object {\"node\": …, \"commit\": …}: \
                 expected value at line 1 column 1",
            ),
        ];
        for (text, want) in cases {
            let e = parse_str(&text).unwrap_err();
            assert_eq!(chain(&e), want, "{text}");
        }
        let e = parse(&b"\xff\n"[..], Path::new("f")).unwrap_err();
        assert_eq!(chain(&e), "f: line 1: the line is not valid UTF-8");
        let e = parse_str(&format!(
            "{{\"node\": \"n1\", \"commit\": \"{A}\", \"seq\": 3}}\n"
        ))
        .unwrap_err();
        assert!(chain(&e).contains("unknown field `seq`"), "{e}");
    }

    #[test]
    fn empty_file_has_no_entries() {
        let input = parse_str("# nothing\n\n").unwrap();
        assert!(input.entries.is_empty());
    }

    #[test]
    fn chunk_errors_say_how_far_the_import_got() {
        let api = || ClientError::Api {
            status: 409,
            message: "node ns1 collides with a name of the zone file".into(),
        };
        let e = ImportError::Chunk {
            chunk: 3,
            chunks: 10,
            first_line: 20001,
            last_line: 30000,
            published: 20000,
            through_line: Some(20000),
            cause: api(),
        };
        assert_eq!(
            chain(&e),
            "chunk 3 of 10 (lines 20001-30000) failed after 2 chunks with 20000 nodes, up to line \
             20000, were published; rerun with --skip-unchanged to resume: 409: node ns1 collides \
             with a name of the zone file"
        );
        let e = ImportError::Chunk {
            chunk: 1,
            chunks: 1,
            first_line: 2,
            last_line: 9,
            published: 0,
            through_line: None,
            cause: api(),
        };
        assert_eq!(
            e.to_string(),
            "chunk 1 of 1 (lines 2-9) failed; nothing was published"
        );
    }

    #[test]
    fn summary_line() {
        let s = Summary {
            zone: "example.test".into(),
            format: Format::Csv,
            nodes: 100,
            published: 80,
            skipped: 20,
            chunks: 1,
            serial: Some(7),
            seconds: 1.26,
            per_second: 100.0,
        };
        assert_eq!(
            s.to_string(),
            "published 80 of 100 nodes to example.test in 1 chunk, skipped 20 unchanged, 1.3 s, \
             100/s, serial 7"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["format"], "csv");
        assert_eq!(json["skipped"], 20);
    }

    /// `herald serve` in this process, on a free port, with the repository's example zone
    /// (whose zone file has `ns1`).
    struct Served {
        _dir: tempfile::TempDir,
        api: String,
        stop: tokio_util::sync::CancellationToken,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    const TOKEN: &str = "import-test-admin-token-0123456789";

    impl Served {
        fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            // Through the flags, which default what a test does not care about.
            let config = crate::serve::settings::resolve(crate::serve::settings::Flags {
                data: Some(dir.path().join("data")),
                zones: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("zones")),
                dns: vec!["127.0.0.1:0".parse().unwrap()],
                api: Some(port),
                admin_token: Some(TOKEN.into()),
                ..Default::default()
            })
            .unwrap();
            let stop = tokio_util::sync::CancellationToken::new();
            let token = stop.clone();
            let thread = std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().unwrap();
                rt.block_on(crate::serve::run(config, token)).unwrap();
            });
            let served = Self {
                _dir: dir,
                api: format!("http://{port}"),
                stop,
                thread: Some(thread),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while served.client().nodes("example.test", None, 1).is_err() {
                assert!(Instant::now() < deadline, "the server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            served
        }

        fn client(&self) -> AdminClient {
            AdminClient::new(&self.api, TOKEN)
        }

        fn all(&self) -> HashMap<String, (String, u64)> {
            let mut all = HashMap::new();
            let mut after = None;
            loop {
                let page = self
                    .client()
                    .nodes("example.test", after.as_deref(), PAGE)
                    .unwrap();
                all.extend(page.nodes.into_iter().map(|n| (n.node, (n.commit, n.seq))));
                match page.next {
                    Some(n) => after = Some(n),
                    None => return all,
                }
            }
        }
    }

    impl Drop for Served {
        fn drop(&mut self) {
            self.stop.cancel();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn commit(i: usize) -> String {
        format!("{i:08x}").repeat(5)
    }

    fn write_csv(dir: &Path, lines: &[String]) -> PathBuf {
        let path = dir.join("nodes.csv");
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    }

    fn options(file: PathBuf, chunk: usize, skip_unchanged: bool) -> ImportOptions {
        ImportOptions {
            zone: "example.test.".into(),
            file,
            chunk,
            skip_unchanged,
            progress: false,
        }
    }

    #[test]
    fn imports_stops_at_a_refused_chunk_and_resumes() {
        let served = Served::start();
        let dir = tempfile::tempdir().unwrap();
        // Header on line 1; node i on line i + 2; ns1 (a zone-file name) in the 3rd chunk.
        let mut lines = vec!["node,commit".to_owned()];
        lines.extend((0..2500).map(|i| format!("n{i},{}", commit(i))));
        lines[2102] = format!("ns1,{}", commit(2101));
        let file = write_csv(dir.path(), &lines);
        let e = run(&served.client(), &options(file.clone(), 1000, false)).unwrap_err();
        let ImportError::Chunk {
            chunk: 3,
            chunks: 3,
            first_line: 2002,
            last_line: 2501,
            published: 2000,
            through_line: Some(2001),
            cause: ClientError::Api { status: 409, .. },
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(served.all().len(), 2000);

        lines[2102] = format!("n2101,{}", commit(2101));
        let file = write_csv(dir.path(), &lines);
        let summary = run(&served.client(), &options(file, 1000, true)).unwrap();
        assert_eq!(
            (
                summary.nodes,
                summary.published,
                summary.skipped,
                summary.chunks
            ),
            (2500, 500, 2000, 1)
        );
        let all = served.all();
        assert_eq!(all.len(), 2500);
        assert_eq!(all["n0"], (commit(0), 1));
        assert_eq!(all["n2499"], (commit(2499), 1));
    }

    #[test]
    fn a_bad_line_publishes_nothing() {
        let served = Served::start();
        let dir = tempfile::tempdir().unwrap();
        let mut lines: Vec<String> = (0..3000).map(|i| format!("n{i},{}", commit(i))).collect();
        lines[1500] = "n1500,not-a-commit".into();
        let file = write_csv(dir.path(), &lines);
        let e = run(&served.client(), &options(file, 1000, false)).unwrap_err();
        assert!(matches!(e, ImportError::Line { line: 1501, .. }), "{e:?}");
        assert!(served.all().is_empty());
        let e = run(
            &served.client(),
            &options(dir.path().join("missing.csv"), 1000, false),
        )
        .unwrap_err();
        assert!(matches!(e, ImportError::Read { .. }), "{e:?}");
        let e = run(&served.client(), &options(dir.path().into(), 0, false)).unwrap_err();
        assert!(matches!(e, ImportError::ChunkSize), "{e:?}");
    }
}
