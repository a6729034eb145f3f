//! A small, strict reader for the Python pickles of the CIFAR "python"
//! layout.
//!
//! Why this exists: no Rust crate reads numpy arrays out of pickles, and the
//! product must not depend on Python. The CIFAR batches are a `dict` holding
//! a numpy `uint8` array (`data`) and lists of ints (`labels`,
//! `fine_labels`...). They were written by Python 2 `cPickle` (protocol 2,
//! keys and pixel bytes as `str`); users who re-save them with Python 3 get
//! protocol 2 with `_codecs.encode` for bytes, or protocol 3/4 with
//! `BINBYTES`, `FRAME`, `MEMOIZE` and `STACK_GLOBAL`. This reader supports
//! exactly the opcodes those files use and exactly the callables they need
//! (`numpy.core.multiarray._reconstruct`, `numpy.dtype`, `_codecs.encode`,
//! `bytes`); anything else is an error naming the opcode (or global) and its
//! byte offset, because guessing at an unknown pickle would risk a silent
//! wrong load (and executing arbitrary callables is what makes pickles
//! unsafe in Python in the first place).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A pickle that could not be read: what went wrong and where.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError {
    /// Byte offset (from the start of the file) of the opcode or argument at
    /// fault.
    pub offset: u64,
    /// What went wrong, in words.
    pub detail: String,
}

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "byte offset {}: {}", self.offset, self.detail)
    }
}

impl std::error::Error for PickleError {}

/// The numpy array that `_reconstruct` + `BUILD` describe: only what the
/// CIFAR files need (element type, shape, raw C-order bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Array shape, outermost dimension first.
    pub shape: Vec<i64>,
    /// numpy type string without byte order, e.g. `u1`.
    pub dtype: String,
    /// Raw element bytes in C (row-major) order.
    pub data: Rc<Vec<u8>>,
}

/// A Python object from the pickle, with the byte offset of the opcode that
/// made it, so that callers can point at bad *content* (an out-of-range
/// label, a wrongly shaped array) in their error messages.
#[derive(Debug, Clone)]
pub struct Value {
    /// Byte offset of the opcode that created this object.
    pub at: u64,
    /// The object itself.
    pub obj: Obj,
}

/// The Python objects this reader can build. Containers are shared
/// (`Rc<RefCell<..>>`) so that the memo (`BINPUT`/`BINGET`) behaves as in
/// Python: a container fetched from the memo sees later appends.
#[derive(Debug, Clone)]
pub enum Obj {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An int that fits in 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A (unicode) `str`, as its UTF-8 bytes, validated when the text is
    /// used ([`Value::text`], [`Value::dict_get`] compares bytes with a valid
    /// key, globals are checked, `_codecs.encode` decodes and so validates).
    /// Why not `Rc<str>`: the pixel data of a Python 3 protocol-2 pickle is
    /// a 60 MB `str`, and validating it up front as well as when decoding it
    /// cost a second per CIFAR file.
    Str(Rc<[u8]>),
    /// `bytes` (or a Python 2 `str`, which is bytes).
    Bytes(Rc<Vec<u8>>),
    /// A tuple.
    Tuple(Rc<Vec<Value>>),
    /// A list.
    List(Rc<RefCell<Vec<Value>>>),
    /// A dict, in insertion order.
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// One of the allowed global callables/classes.
    Global(Global),
    /// A `numpy.dtype` (its type string, e.g. `u1`).
    Dtype(Rc<str>),
    /// A numpy array; `None` inside until `BUILD` gives it its state.
    Array(Rc<RefCell<Option<Array>>>),
}

/// The globals the CIFAR and NAS-Bench-201 pickles reference; every other
/// global is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// `numpy.core.multiarray._reconstruct` (also `numpy._core...`, numpy 2).
    Reconstruct,
    /// `numpy.ndarray`.
    Ndarray,
    /// `numpy.dtype`.
    Dtype,
    /// `_codecs.encode`: how Python 3 writes `bytes` at protocol 2.
    CodecsEncode,
    /// `builtins.bytes` / `__builtin__.bytes`: empty bytes at protocol 2.
    Bytes,
    /// `numpy.core.multiarray.scalar` (also `numpy._core...`): a numpy
    /// number such as `numpy.float64(93.5)`, as NAS-Bench-201 files hold.
    Scalar,
}

impl Global {
    fn lookup(module: &str, name: &str) -> Option<Global> {
        Some(match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Global::Reconstruct
            }
            ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => Global::Scalar,
            ("numpy", "ndarray") => Global::Ndarray,
            ("numpy", "dtype") => Global::Dtype,
            ("_codecs", "encode") => Global::CodecsEncode,
            ("builtins" | "__builtin__", "bytes") => Global::Bytes,
            _ => return None,
        })
    }
}

impl Value {
    /// The value for `key` if this is a dict with a `str` or `bytes` key of
    /// that text (Python 2 files use `str` keys, Python 3 `bytes` or `str`).
    pub fn dict_get(&self, key: &str) -> Option<Value> {
        let Obj::Dict(items) = &self.obj else {
            return None;
        };
        let items = items.borrow();
        items.iter().find_map(|(k, v)| {
            let hit = match &k.obj {
                Obj::Str(s) => &**s == key.as_bytes(),
                Obj::Bytes(b) => b.as_slice() == key.as_bytes(),
                _ => false,
            };
            hit.then(|| v.clone())
        })
    }

    /// The text of a `str` (or of `bytes` holding UTF-8), if it is one;
    /// `None` for other types and for invalid UTF-8.
    pub fn text(&self) -> Option<&str> {
        match &self.obj {
            Obj::Str(b) => std::str::from_utf8(b).ok(),
            Obj::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// A short name of the Python type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.obj {
            Obj::None => "None",
            Obj::Bool(_) => "bool",
            Obj::Int(_) => "int",
            Obj::Float(_) => "float",
            Obj::Str(_) => "str",
            Obj::Bytes(_) => "bytes",
            Obj::Tuple(_) => "tuple",
            Obj::List(_) => "list",
            Obj::Dict(_) => "dict",
            Obj::Global(_) => "global",
            Obj::Dtype(_) => "numpy.dtype",
            Obj::Array(_) => "numpy.ndarray",
        }
    }
}

/// Opcode names, for error messages (all of pickle protocols 0-5).
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

/// Parses a whole pickle (which must end with `STOP` and nothing after it)
/// and returns the object it describes.
pub fn parse(bytes: &[u8]) -> Result<Value, PickleError> {
    // Protocol 2+ pickles (all the CIFAR ones) start with PROTO; checking it
    // first turns "you gave me the .tar.gz" into a clear message rather than
    // an odd opcode.
    match bytes {
        [0x80, ..] => {}
        [] => return err(0, "the file is empty"),
        [0x1f, 0x8b, ..] => {
            return err(
                0,
                "this is a gzip file, not a pickle: extract the archive (tar xzf) first",
            )
        }
        [b, ..] => {
            return err(
                0,
                format!(
                "not a protocol 2+ pickle: it starts with byte 0x{b:02x} ({}), not 0x80 (PROTO)",
                opcode_name(*b)
            ),
            )
        }
    }
    Parser {
        bytes,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

type Res<T> = Result<T, PickleError>;

fn err<T>(offset: usize, detail: impl Into<String>) -> Res<T> {
    Err(PickleError {
        offset: offset as u64,
        detail: detail.into(),
    })
}

impl<'a> Parser<'a> {
    /// Takes `n` argument bytes of the opcode at `op_at`, or reports the
    /// truncation.
    fn take(&mut self, n: usize, op_at: usize, op: u8) -> Res<&'a [u8]> {
        let left = self.bytes.len() - self.pos;
        if n > left {
            return err(
                self.bytes.len(),
                format!(
                    "the file ends in the middle of opcode {} (started at byte offset {op_at}): \
                     it needs {n} more bytes from byte offset {} but only {left} are left; \
                     the file is truncated",
                    opcode_name(op),
                    self.pos
                ),
            );
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u8_arg(&mut self, at: usize, op: u8) -> Res<u8> {
        Ok(self.take(1, at, op)?[0])
    }

    fn u32_arg(&mut self, at: usize, op: u8) -> Res<u32> {
        let b = self.take(4, at, op)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line_arg(&mut self, at: usize, op: u8) -> Res<&'a str> {
        let rest = &self.bytes[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return err(
                self.bytes.len(),
                format!(
                    "the file ends in the middle of opcode {} (started at byte offset {at}): \
                     no end of line; the file is truncated",
                    opcode_name(op)
                ),
            );
        };
        let Ok(text) = std::str::from_utf8(&rest[..end]) else {
            return err(
                self.pos,
                format!("the argument of {} is not text", opcode_name(op)),
            );
        };
        self.pos += end + 1;
        Ok(text)
    }

    fn push(&mut self, at: usize, obj: Obj) {
        self.stack.push(Value { at: at as u64, obj });
    }

    fn pop(&mut self, at: usize, op: u8) -> Res<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return err(
                at,
                format!(
                    "opcode {} needs a value but the stack is empty",
                    opcode_name(op)
                ),
            );
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }

    fn top(&self, at: usize, op: u8) -> Res<&Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return err(
                at,
                format!(
                    "opcode {} needs a value but the stack is empty",
                    opcode_name(op)
                ),
            );
        }
        Ok(self.stack.last().expect("checked non-empty"))
    }

    fn pop_mark(&mut self, at: usize, op: u8) -> Res<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            return err(
                at,
                format!("opcode {} needs a MARK but there is none", opcode_name(op)),
            );
        };
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, at: usize, op: u8, index: u32) -> Res<()> {
        let v = self.top(at, op)?.clone();
        self.memo.insert(index, v);
        Ok(())
    }

    fn memo_get(&mut self, at: usize, index: u32) -> Res<()> {
        match self.memo.get(&index) {
            Some(v) => {
                let v = v.clone();
                self.stack.push(v);
                Ok(())
            }
            None => err(
                at,
                format!("memo entry {index} is fetched before it was stored"),
            ),
        }
    }

    // One match over the opcodes, kept whole so that it reads as the
    // format's opcode table; each arm is a few lines of stack work.
    fn run(mut self) -> Res<Value> {
        loop {
            let at = self.pos;
            let Some(&op) = self.bytes.get(self.pos) else {
                return err(
                    self.bytes.len(),
                    format!(
                        "the file ends at byte offset {} before the STOP opcode; the file is truncated",
                        self.bytes.len()
                    ),
                );
            };
            self.pos += 1;
            match op {
                0x80 => {
                    // PROTO
                    let v = self.u8_arg(at, op)?;
                    if v > 5 {
                        return err(at, format!("pickle protocol {v} is newer than any known (0-5)"));
                    }
                }
                0x95 => {
                    // FRAME: the frame's bytes follow inline; we hold the
                    // whole file, so only check that they are all there.
                    let b = self.take(8, at, op)?;
                    let len = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                    let left = (self.bytes.len() - self.pos) as u64;
                    if len > left {
                        return err(
                            self.bytes.len(),
                            format!(
                                "the FRAME at byte offset {at} announces {len} bytes but only {left} are left; \
                                 the file is truncated"
                            ),
                        );
                    }
                }
                b'}' => self.push(at, Obj::Dict(Rc::new(RefCell::new(Vec::new())))),
                b']' => self.push(at, Obj::List(Rc::new(RefCell::new(Vec::new())))),
                b')' => self.push(at, Obj::Tuple(Rc::new(Vec::new()))),
                b'(' => self.marks.push(self.stack.len()),
                b'X' => {
                    let n = self.u32_arg(at, op)? as usize;
                    let raw = self.take(n, at, op)?;
                    self.push(at, Obj::Str(Rc::from(raw)));
                }
                0x8c => {
                    let n = self.u8_arg(at, op)? as usize;
                    let raw = self.take(n, at, op)?;
                    self.push(at, Obj::Str(Rc::from(raw)));
                }
                b'T' | b'B' => {
                    let n = self.u32_arg(at, op)? as usize;
                    if op == b'T' && n > i32::MAX as usize {
                        return err(at, "BINSTRING with a negative length");
                    }
                    let raw = self.take(n, at, op)?;
                    self.push(at, Obj::Bytes(Rc::new(raw.to_vec())));
                }
                b'U' | b'C' => {
                    let n = self.u8_arg(at, op)? as usize;
                    let raw = self.take(n, at, op)?;
                    self.push(at, Obj::Bytes(Rc::new(raw.to_vec())));
                }
                b'J' => {
                    let v = self.u32_arg(at, op)? as i32;
                    self.push(at, Obj::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8_arg(at, op)?;
                    self.push(at, Obj::Int(v as i64));
                }
                b'M' => {
                    let b = self.take(2, at, op)?;
                    self.push(at, Obj::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let n = self.u8_arg(at, op)? as usize;
                    let b = self.take(n, at, op)?;
                    if n > 8 {
                        return err(at, format!("LONG1 of {n} bytes does not fit in 64 bits"));
                    }
                    let mut v: i64 = 0;
                    for (i, &byte) in b.iter().enumerate() {
                        v |= (byte as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(at, Obj::Int(v));
                }
                b'G' => {
                    let b = self.take(8, at, op)?;
                    self.push(at, Obj::Float(f64::from_be_bytes(b.try_into().expect("8 bytes"))));
                }
                b'N' => self.push(at, Obj::None),
                0x88 => self.push(at, Obj::Bool(true)),
                0x89 => self.push(at, Obj::Bool(false)),
                b'c' => {
                    let module = self.line_arg(at, op)?;
                    let name = self.line_arg(at, op)?;
                    self.push_global(at, module, name)?;
                }
                0x93 => {
                    let name = self.pop(at, op)?;
                    let module = self.pop(at, op)?;
                    match (&module.obj, &name.obj) {
                        (Obj::Str(m), Obj::Str(n)) => {
                            let (m, n) = (m.clone(), n.clone());
                            let (Ok(m), Ok(n)) = (std::str::from_utf8(&m), std::str::from_utf8(&n))
                            else {
                                return err(at, "STACK_GLOBAL with a name that is not UTF-8");
                            };
                            self.push_global(at, m, n)?;
                        }
                        _ => {
                            return err(
                                at,
                                format!(
                                    "STACK_GLOBAL needs two str but got {} and {}",
                                    module.type_name(),
                                    name.type_name()
                                ),
                            )
                        }
                    }
                }
                b'R' => {
                    let args = self.pop(at, op)?;
                    let func = self.pop(at, op)?;
                    let obj = reduce(at, &func, &args)?;
                    self.push(at, obj);
                }
                b'b' => {
                    let state = self.pop(at, op)?;
                    let target = self.top(at, op)?;
                    build(at, target, &state)?;
                }
                b't' => {
                    let items = self.pop_mark(at, op)?;
                    self.push(at, Obj::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(at, op)?);
                    }
                    items.reverse();
                    self.push(at, Obj::Tuple(Rc::new(items)));
                }
                b'q' => {
                    let i = self.u8_arg(at, op)? as u32;
                    self.memo_put(at, op, i)?;
                }
                b'r' => {
                    let i = self.u32_arg(at, op)?;
                    self.memo_put(at, op, i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memo_put(at, op, i)?;
                }
                b'h' => {
                    let i = self.u8_arg(at, op)? as u32;
                    self.memo_get(at, i)?;
                }
                b'j' => {
                    let i = self.u32_arg(at, op)?;
                    self.memo_get(at, i)?;
                }
                b's' => {
                    let value = self.pop(at, op)?;
                    let key = self.pop(at, op)?;
                    let target = self.top(at, op)?;
                    let Obj::Dict(d) = &target.obj else {
                        return err(at, format!("SETITEM on a {}, not a dict", target.type_name()));
                    };
                    d.borrow_mut().push((key, value));
                }
                b'u' => {
                    let items = self.pop_mark(at, op)?;
                    if items.len() % 2 != 0 {
                        return err(at, "SETITEMS with an odd number of items (a key without value)");
                    }
                    let target = self.top(at, op)?;
                    let Obj::Dict(d) = &target.obj else {
                        return err(at, format!("SETITEMS on a {}, not a dict", target.type_name()));
                    };
                    let mut d = d.borrow_mut();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
                b'a' => {
                    let value = self.pop(at, op)?;
                    let target = self.top(at, op)?;
                    let Obj::List(l) = &target.obj else {
                        return err(at, format!("APPEND on a {}, not a list", target.type_name()));
                    };
                    l.borrow_mut().push(value);
                }
                b'e' => {
                    let items = self.pop_mark(at, op)?;
                    let target = self.top(at, op)?;
                    let Obj::List(l) = &target.obj else {
                        return err(at, format!("APPENDS on a {}, not a list", target.type_name()));
                    };
                    l.borrow_mut().extend(items);
                }
                b'.' => {
                    if !self.marks.is_empty() || self.stack.len() != 1 {
                        return err(
                            at,
                            format!(
                                "STOP with {} values and {} marks left on the stack (expected exactly one value)",
                                self.stack.len(),
                                self.marks.len()
                            ),
                        );
                    }
                    if self.pos != self.bytes.len() {
                        return err(
                            self.pos,
                            format!("{} unexpected bytes after the STOP opcode", self.bytes.len() - self.pos),
                        );
                    }
                    return Ok(self.stack.pop().expect("one value"));
                }
                _ => {
                    return err(
                        at,
                        format!(
                            "opcode 0x{op:02x} ({}) is not one a CIFAR pickle uses, so it is not supported",
                            opcode_name(op)
                        ),
                    )
                }
            }
        }
    }

    fn push_global(&mut self, at: usize, module: &str, name: &str) -> Res<()> {
        match Global::lookup(module, name) {
            Some(g) => {
                self.push(at, Obj::Global(g));
                Ok(())
            }
            None => err(
                at,
                format!(
                    "global {module}.{name} is not one a CIFAR or NAS-Bench-201 pickle uses, so it is not supported"
                ),
            ),
        }
    }
}

/// Text of a `str` or `bytes` value (dtype names, codec names, 'b').
fn text(v: &Value) -> Option<String> {
    v.text().map(str::to_string)
}

/// Latin-1 bytes of the UTF-8 text `b`, or `None` if it has a character
/// above U+00FF or is not valid UTF-8. Characters U+0080..U+00FF are the
/// two-byte sequences `C2 xx` / `C3 xx`, so anything else but ASCII is an
/// error. The pixel data of a Python 3 protocol-2 pickle is tens of MB of
/// such text with random one- and two-byte characters, which defeats branch
/// prediction; so the loop is branch-free: it writes every byte's value and
/// advances the output only on non-continuation bytes, and accumulates the
/// validity checks.
fn latin1(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; b.len()];
    let mut j = 0usize;
    let mut bad = 0u8;
    let mut prev_lead = 0u8;
    let n = b.len();
    for i in 0..n {
        let x = b[i];
        let next = if i + 1 < n { b[i + 1] } else { 0 };
        let cont = u8::from(x & 0xc0 == 0x80);
        let lead = u8::from(x & 0xfe == 0xc2);
        // A continuation byte must follow a lead byte, and only then; any
        // other byte >= 0xC0 starts a character above U+00FF (or bad UTF-8).
        bad |= (cont ^ prev_lead) | (u8::from(x >= 0xc0) & (lead ^ 1));
        let decoded = ((x & 0x1f) << 6) | (next & 0x3f);
        let mask = lead.wrapping_neg();
        // j <= index of x < len: the check never fails (and predicts well).
        if let Some(slot) = out.get_mut(j) {
            *slot = (decoded & mask) | (x & !mask);
        }
        j += usize::from(cont ^ 1);
        prev_lead = lead;
    }
    if bad | prev_lead != 0 {
        return None;
    }
    out.truncate(j);
    Some(out)
}

fn tuple_items(v: &Value) -> Option<Rc<Vec<Value>>> {
    match &v.obj {
        Obj::Tuple(t) => Some(t.clone()),
        _ => None,
    }
}

/// Applies one of the allowed callables (`REDUCE`).
fn reduce(at: usize, func: &Value, args: &Value) -> Res<Obj> {
    let Obj::Global(g) = func.obj else {
        return err(
            at,
            format!("REDUCE calls a {}, not a known global", func.type_name()),
        );
    };
    let Some(args) = tuple_items(args) else {
        return err(
            at,
            format!("REDUCE arguments are a {}, not a tuple", args.type_name()),
        );
    };
    match g {
        Global::CodecsEncode => codecs_encode(at, &args),
        Global::Bytes => {
            if !args.is_empty() {
                return err(
                    at,
                    "bytes() with arguments (only the empty bytes() is used)",
                );
            }
            Ok(Obj::Bytes(Rc::new(Vec::new())))
        }
        Global::Dtype => {
            // numpy.dtype('u1', False/0, True/1)
            let name = args.first().and_then(text);
            match name {
                Some(name) => Ok(Obj::Dtype(Rc::from(name.as_str()))),
                None => err(at, "numpy.dtype without a type string"),
            }
        }
        Global::Reconstruct => {
            // _reconstruct(numpy.ndarray, (0,), b'b'): an empty array that
            // the following BUILD fills in.
            match args.first().map(|a| &a.obj) {
                Some(Obj::Global(Global::Ndarray)) => Ok(Obj::Array(Rc::new(RefCell::new(None)))),
                _ => err(
                    at,
                    "numpy _reconstruct of something other than numpy.ndarray",
                ),
            }
        }
        Global::Ndarray => err(
            at,
            "numpy.ndarray called directly (only through _reconstruct)",
        ),
        Global::Scalar => match args.as_slice() {
            [dtype, data] => numpy_scalar(at, dtype, data),
            _ => err(
                at,
                format!(
                    "numpy scalar with {} arguments (expected a dtype and bytes)",
                    args.len()
                ),
            ),
        },
    }
}

/// `_codecs.encode(text, 'latin1')`, the bytes Python 3 writes at
/// protocol 2.
fn codecs_encode(at: usize, args: &[Value]) -> Res<Obj> {
    let [s, codec] = args else {
        return err(
            at,
            format!("_codecs.encode with {} arguments (expected 2)", args.len()),
        );
    };
    let codec = text(codec).unwrap_or_default();
    if codec != "latin1" && codec != "latin-1" {
        return err(
            at,
            format!("_codecs.encode with codec {codec:?} (only latin1 is used for bytes)"),
        );
    }
    let Obj::Str(s) = &s.obj else {
        return err(
            at,
            format!("_codecs.encode of a {}, not a str", s.type_name()),
        );
    };
    match latin1(s) {
        Some(out) => Ok(Obj::Bytes(Rc::new(out))),
        None => err(
            at,
            "_codecs.encode of text with characters beyond U+00FF (not latin1)",
        ),
    }
}

/// `scalar(dtype, raw bytes)`: a little-endian numpy number as an int,
/// float or bool (the byte order is checked when the dtype is built).
fn numpy_scalar(at: usize, dtype: &Value, data: &Value) -> Res<Obj> {
    let Obj::Dtype(name) = &dtype.obj else {
        return err(
            at,
            format!("numpy scalar whose dtype is a {}", dtype.type_name()),
        );
    };
    let bytes: &[u8] = match &data.obj {
        Obj::Bytes(b) => b,
        Obj::Str(s) => s,
        _ => {
            return err(
                at,
                format!(
                    "numpy scalar whose data is a {}, not bytes",
                    data.type_name()
                ),
            )
        }
    };
    let name = name.trim_start_matches(['|', '<', '=']);
    let wrong_size = || {
        err(
            at,
            format!("numpy {name} scalar with {} data bytes", bytes.len()),
        )
    };
    macro_rules! number {
        ($t:ty, $wrap:expr) => {
            match <[u8; std::mem::size_of::<$t>()]>::try_from(bytes) {
                Ok(raw) => Ok($wrap(<$t>::from_le_bytes(raw))),
                Err(_) => wrong_size(),
            }
        };
    }
    match name {
        "f8" => number!(f64, Obj::Float),
        "f4" => number!(f32, |x: f32| Obj::Float(f64::from(x))),
        "i8" => number!(i64, Obj::Int),
        "i4" => number!(i32, |x: i32| Obj::Int(i64::from(x))),
        "i2" => number!(i16, |x: i16| Obj::Int(i64::from(x))),
        "i1" => number!(i8, |x: i8| Obj::Int(i64::from(x))),
        "u4" => number!(u32, |x: u32| Obj::Int(i64::from(x))),
        "u2" => number!(u16, |x: u16| Obj::Int(i64::from(x))),
        "u1" => number!(u8, |x: u8| Obj::Int(i64::from(x))),
        "b1" => number!(u8, |x: u8| Obj::Bool(x != 0)),
        other => err(
            at,
            format!(
                "numpy scalar of dtype {other:?} is not supported (floats, ints and bools are)"
            ),
        ),
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v.obj {
        Obj::Int(i) => Some(i),
        Obj::Bool(b) => Some(b as i64),
        _ => None,
    }
}

/// Applies `BUILD` state to a dtype or an array.
fn build(at: usize, target: &Value, state: &Value) -> Res<()> {
    match &target.obj {
        // The dtype state is (version, byte order, ...): only little-endian
        // data is decoded (every numpy pickle written on x86 or ARM), so a
        // big-endian one is refused rather than misread.
        Obj::Dtype(_) => match &state.obj {
            Obj::Tuple(items) => match items.get(1).and_then(text).as_deref() {
                Some(">") => err(
                    at,
                    "big-endian numpy dtype (only little-endian data is read)",
                ),
                _ => Ok(()),
            },
            _ => err(
                at,
                format!("BUILD of a numpy.dtype with a {} state", state.type_name()),
            ),
        },
        Obj::Array(cell) => {
            let array = array_state(at, state)?;
            let mut slot = cell.borrow_mut();
            if slot.is_some() {
                return err(at, "BUILD of a numpy.ndarray that already has its state");
            }
            *slot = Some(array);
            Ok(())
        }
        _ => err(
            at,
            format!(
                "BUILD of a {} (only numpy dtypes and arrays are built)",
                target.type_name()
            ),
        ),
    }
}

/// The array a numpy.ndarray's `BUILD` state describes: (version, shape,
/// dtype, is_fortran, rawdata), C-ordered, one-byte elements, its data as
/// long as its shape says.
fn array_state(at: usize, state: &Value) -> Res<Array> {
    let Some(items) = tuple_items(state) else {
        return err(
            at,
            format!(
                "BUILD of a numpy.ndarray with a {} state",
                state.type_name()
            ),
        );
    };
    // (version, shape, dtype, is_fortran, rawdata), or the old form
    // without the version.
    let fields = match items.len() {
        5 => &items[1..],
        4 => &items[..],
        n => {
            return err(
                at,
                format!("numpy.ndarray state with {n} fields (expected 4 or 5)"),
            )
        }
    };
    let shape = array_shape(at, &fields[0])?;
    let Obj::Dtype(dtype) = &fields[1].obj else {
        return err(
            at,
            format!(
                "numpy.ndarray state: the dtype is a {}",
                fields[1].type_name()
            ),
        );
    };
    if as_int(&fields[2]) != Some(0) {
        return err(
            at,
            "numpy.ndarray state: Fortran-ordered arrays are not supported",
        );
    }
    let data = array_data(at, &fields[3])?;
    let dtype = dtype.trim_start_matches(['|', '<', '=']).to_string();
    let item = match dtype.as_str() {
        "u1" | "i1" | "b1" => 1,
        _ => {
            return err(
                at,
                format!("numpy.ndarray of dtype {dtype:?} is not supported (CIFAR pixels are u1)"),
            )
        }
    };
    let count = shape.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d));
    if count.map(|c| c as u128 * item as u128) != Some(data.len() as u128) {
        return err(
            fields[3].at as usize,
            format!(
                "numpy.ndarray of shape {shape:?} needs {} bytes but its data holds {}",
                count
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "too many".into()),
                data.len()
            ),
        );
    }
    Ok(Array { shape, dtype, data })
}

/// The shape of a numpy.ndarray's state: a tuple of non-negative ints.
fn array_shape(at: usize, value: &Value) -> Res<Vec<i64>> {
    let Some(shape_items) = tuple_items(value) else {
        return err(at, "numpy.ndarray state: the shape is not a tuple");
    };
    let mut shape = Vec::with_capacity(shape_items.len());
    for s in shape_items.iter() {
        match as_int(s) {
            Some(d) if d >= 0 => shape.push(d),
            _ => {
                return err(
                    at,
                    "numpy.ndarray state: a dimension is not a non-negative int",
                )
            }
        }
    }
    Ok(shape)
}

/// The raw bytes of a numpy.ndarray's state (bytes, or latin1 text as
/// Python 2 wrote them).
fn array_data(at: usize, value: &Value) -> Res<Rc<Vec<u8>>> {
    match &value.obj {
        Obj::Bytes(b) => Ok(b.clone()),
        Obj::Str(s) if s.is_ascii() => Ok(Rc::new(s.to_vec())),
        _ => err(
            at,
            format!(
                "numpy.ndarray state: the raw data is a {}, not bytes",
                value.type_name()
            ),
        ),
    }
}

/// The protocol-2 opcodes with which numpy pickles `numpy.float64(x)`
/// (numpy 1.x module path), for tests of readers built on this one.
#[cfg(test)]
pub(crate) fn numpy_f64_protocol2(x: f64) -> Vec<u8> {
    let unicode = |p: &mut Vec<u8>, t: &str| {
        p.push(b'X');
        p.extend_from_slice(&(t.len() as u32).to_le_bytes());
        p.extend_from_slice(t.as_bytes());
    };
    let mut p = b"cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\n".to_vec();
    unicode(&mut p, "f8");
    p.extend_from_slice(b"\x89\x88\x87R(K\x03");
    unicode(&mut p, "<");
    p.extend_from_slice(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbc_codecs\nencode\n");
    // bytes at protocol 2: encode(the bytes as latin-1 text, 'latin1')
    let text: String = x.to_le_bytes().iter().map(|&b| char::from(b)).collect();
    unicode(&mut p, &text);
    unicode(&mut p, "latin1");
    p.extend_from_slice(b"\x86R\x86R");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cifar")
            .join(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn data_array(v: &Value) -> Array {
        let data = v.dict_get("data").expect("data key");
        let Obj::Array(a) = &data.obj else {
            panic!("data is a {}", data.type_name())
        };
        let a = a.borrow().clone().expect("built");
        a
    }

    fn int_list(v: &Value, key: &str) -> Vec<i64> {
        let l = v.dict_get(key).expect("key");
        let Obj::List(l) = &l.obj else {
            panic!("not a list")
        };
        let l = l.borrow().iter().map(|x| as_int(x).expect("int")).collect();
        l
    }

    #[test]
    fn python2_style_cifar10_batch() {
        let v = parse(&fixture("cifar-10-batches-py/test_batch")).unwrap();
        let a = data_array(&v);
        assert_eq!(a.shape, vec![10, 3072]);
        assert_eq!(a.dtype, "u1");
        assert_eq!(a.data.len(), 30720);
        let mut labels = int_list(&v, "labels");
        labels.sort();
        assert_eq!(labels, (0..10).collect::<Vec<_>>());
        // The binary fixture holds the same pixels after each label byte.
        let bin = fixture("cifar-10-batches-bin/test_batch.bin");
        assert_eq!(&bin[1..3073], &a.data[..3072]);
    }

    #[test]
    fn python3_protocols_2_3_4_agree() {
        let p2 = parse(&fixture("cifar-10-batches-py/test_batch")).unwrap();
        let p3 = parse(&fixture("pickle-variants/test_batch.proto3")).unwrap();
        let p4 = parse(&fixture("pickle-variants/test_batch.proto4")).unwrap();
        assert_eq!(data_array(&p2), data_array(&p3));
        assert_eq!(data_array(&p2), data_array(&p4));
        assert_eq!(int_list(&p2, "labels"), int_list(&p4, "labels"));
        let c100 = parse(&fixture("cifar-100-python/test")).unwrap();
        assert_eq!(data_array(&c100).shape, vec![10, 3072]);
        assert_eq!(int_list(&c100, "fine_labels").len(), 10);
    }

    #[test]
    fn every_truncation_is_an_error_with_an_offset() {
        for rel in [
            "cifar-10-batches-py/test_batch",
            "pickle-variants/test_batch.proto4",
            "cifar-100-python/test",
        ] {
            let full = fixture(rel);
            // Every cut in the header, and a sample of cuts in the rest.
            let cuts = (0..full.len().min(300)).chain((300..full.len()).step_by(97));
            for cut in cuts {
                let e = parse(&full[..cut]).expect_err("a truncated pickle must not parse");
                assert!(e.offset as usize <= cut, "{rel} cut at {cut}: {e}");
                assert!(!e.detail.is_empty());
            }
        }
    }

    #[test]
    fn unknown_opcode_and_global_are_named() {
        let e = parse(b"\x80\x02}q\x00\x8f.").unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(e.detail.contains("EMPTY_SET"), "{e}");
        let e = parse(b"\x80\x02cos\nsystem\n.").unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.detail.contains("os.system"), "{e}");
        let e = parse(b"\x80\x02N.xx").unwrap_err();
        assert!(e.detail.contains("after the STOP"), "{e}");
        let e = parse(b"\x80\x02(N.").unwrap_err();
        assert!(e.detail.contains("STOP"), "{e}");
        let e = parse(b"\x1f\x8b\x08\x00").unwrap_err();
        assert!(e.offset == 0 && e.detail.contains("gzip"), "{e}");
        let e = parse(b"(dp0\n.").unwrap_err();
        assert!(e.offset == 0 && e.detail.contains("0x28 (MARK)"), "{e}");
    }

    #[test]
    fn numpy_scalars_become_numbers() {
        for x in [93.5, 0.1, -1e300] {
            let mut p = b"\x80\x02".to_vec();
            p.extend(numpy_f64_protocol2(x));
            p.push(b'.');
            let v = parse(&p).unwrap();
            assert!(matches!(v.obj, Obj::Float(f) if f == x), "{x}: {v:?}");
        }
        // Protocol 4, numpy 2 module path: STACK_GLOBAL, SHORT_BINBYTES.
        let mut p = b"\x80\x04\x8c\x16numpy._core.multiarray\x8c\x06scalar\x93".to_vec();
        p.extend_from_slice(b"\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02i4\x89\x88\x87R");
        p.extend_from_slice(b"(K\x03\x8c\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
        p.extend_from_slice(b"C\x04\xfe\xff\xff\xff\x86R.");
        assert_eq!(as_int(&parse(&p).unwrap()), Some(-2));
        // Wrong data length, big-endian dtype, unsupported dtype.
        let edit = |from: &[u8], to: &[u8]| {
            let at = p.windows(from.len()).position(|w| w == from).unwrap();
            [&p[..at], to, &p[at + from.len()..]].concat()
        };
        let short = edit(b"C\x04\xfe\xff\xff\xff", b"C\x02\xfe\xff");
        let e = parse(&short).unwrap_err();
        assert!(e.detail.contains("i4 scalar with 2 data bytes"), "{e}");
        let e = parse(&edit(b"\x8c\x01<", b"\x8c\x01>")).unwrap_err();
        assert!(e.detail.contains("big-endian"), "{e}");
        let e = parse(&edit(b"\x8c\x02i4", b"\x8c\x02c8")).unwrap_err();
        assert!(e.detail.contains("\"c8\" is not supported"), "{e}");
    }

    #[test]
    fn small_values_and_memo() {
        // {'a': [1, -2, 300, 2**40, 1.5, True, None, (), 'x', 'x'(memo)]}
        let mut p =
            b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffM,\x01".to_vec();
        p.extend_from_slice(b"\x8a\x06\x00\x00\x00\x00\x00\x01");
        p.extend_from_slice(b"G\x3f\xf8\x00\x00\x00\x00\x00\x00");
        p.extend_from_slice(b"\x88N)\x8c\x01x\x94h\x03es.");
        let v = parse(&p).unwrap();
        let l = v.dict_get("a").unwrap();
        let Obj::List(l) = &l.obj else { panic!() };
        let l = l.borrow();
        assert_eq!(as_int(&l[0]), Some(1));
        assert_eq!(as_int(&l[1]), Some(-2));
        assert_eq!(as_int(&l[2]), Some(300));
        assert_eq!(as_int(&l[3]), Some(1 << 40));
        assert!(matches!(l[4].obj, Obj::Float(f) if f == 1.5));
        assert!(matches!(l[5].obj, Obj::Bool(true)));
        assert!(matches!(l[6].obj, Obj::None));
        assert!(matches!(&l[7].obj, Obj::Tuple(t) if t.is_empty()));
        assert!(matches!(&l[8].obj, Obj::Str(s) if &**s == b"x"));
        assert!(matches!(&l[9].obj, Obj::Str(s) if &**s == b"x"));
        let all: String = (0..=255u8).map(char::from).collect();
        assert_eq!(latin1(all.as_bytes()), Some((0..=255u8).collect()));
        assert_eq!(latin1("a\u{e9}z".as_bytes()), Some(vec![b'a', 0xe9, b'z']));
        assert_eq!(latin1(b""), Some(vec![]));
        assert_eq!(latin1("\u{100}".as_bytes()), None);
        assert_eq!(latin1("\u{20ac}".as_bytes()), None);
        // Invalid UTF-8: a lone lead, a lone continuation, an overlong form.
        assert_eq!(latin1(b"a\xc3"), None);
        assert_eq!(latin1(b"\xa9a"), None);
        assert_eq!(latin1(b"\xc3\xa9\xa9"), None);
        assert_eq!(latin1(b"\xc0\x80"), None);
        // LONG1 negative.
        let v = parse(b"\x80\x02\x8a\x01\xff.").unwrap();
        assert_eq!(as_int(&v), Some(-1));
    }
}
