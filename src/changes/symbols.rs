//! What a source file defines and uses, read with tree-sitter: its functions, methods, classes
//! and test blocks with their line spans, and for each the names its body mentions.
//!
//! Names, not resolved references: the call graph is built by name (`crate::changes::reach`),
//! which needs no type information, works the same in every language and costs one parse per
//! file. A body's "uses" are every identifier in it (calls, attribute and property names, type
//! names); names that no analysed file defines never enter the graph, so locals cost nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Parser};

/// Languages read with a tree-sitter grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
}

impl Lang {
    /// The language of a path, by extension; `None` for files the analysis does not read.
    pub fn of(path: &str) -> Option<Lang> {
        let ext = path.rsplit_once('.')?.1;
        Some(match ext {
            "py" => Lang::Python,
            "js" | "jsx" | "mjs" | "cjs" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "go" => Lang::Go,
            _ => return None,
        })
    }

    fn grammar(self) -> tree_sitter::Language {
        match self {
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    fn is_js(self) -> bool {
        matches!(self, Lang::JavaScript | Lang::TypeScript | Lang::Tsx)
    }
}

/// What kind of definition a symbol is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Function,
    Class,
    /// A `describe(…)` block (JavaScript/TypeScript test suites).
    Suite,
    /// An `it(…)`/`test(…)` block: a test named by a string, not by a function.
    TestBlock,
}

/// One definition in a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Symbol {
    /// The short name calls use (`tax`), or a test block's string.
    pub name: String,
    /// Dotted with its enclosing definitions (`Invoice.tax`).
    pub qual: String,
    pub kind: Kind,
    /// 1-based, inclusive.
    pub start: u32,
    pub end: u32,
    /// The enclosing definition (index into the file's symbols).
    pub parent: Option<u32>,
    /// Set-up code: a pytest fixture, `setUp`/`setup_method`, `beforeEach`/`beforeAll`.
    pub fixture: bool,
    /// Parameter names (pytest passes fixtures by parameter name); a class's base classes.
    pub params: Vec<String>,
    /// Names the body mentions, sorted.
    pub uses: Vec<String>,
    /// A hash of its source text (decorators included): two versions of a file are compared
    /// definition by definition when no diff is at hand (`crate::changes::reach`).
    pub hash: u64,
}

/// A file's definitions; `errors` when the grammar could not read all of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSymbols {
    pub symbols: Vec<Symbol>,
    /// Names mentioned outside every definition (module-level code).
    pub module_uses: Vec<String>,
    pub errors: bool,
}

impl FileSymbols {
    /// The innermost definition spanning `line` (1-based).
    pub fn innermost(&self, line: u32) -> Option<usize> {
        self.symbols
            .iter()
            .enumerate()
            .filter(|(_, s)| s.start <= line && line <= s.end)
            .min_by_key(|(_, s)| s.end - s.start)
            .map(|(i, _)| i)
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the {0:?} grammar could not be loaded: {1}")]
    Grammar(Lang, tree_sitter::LanguageError),
    #[error("the parser gave up")]
    NoTree,
}

/// Names set-up methods have in the xUnit-style frameworks.
const SETUP_METHODS: &[&str] = &[
    "setUp",
    "setUpClass",
    "setup_method",
    "setup_class",
    "setup",
    "asyncSetUp",
];
const JS_TESTS: &[&str] = &["it", "test", "specify"];
const JS_SUITES: &[&str] = &["describe", "context", "suite"];
const JS_HOOKS: &[&str] = &["beforeEach", "beforeAll", "before", "setup"];

/// Read one file's definitions.
pub fn extract(lang: Lang, src: &[u8]) -> Result<FileSymbols, ParseError> {
    let mut parser = Parser::new();
    parser
        .set_language(&lang.grammar())
        .map_err(|e| ParseError::Grammar(lang, e))?;
    let tree = parser.parse(src, None).ok_or(ParseError::NoTree)?;
    let root = tree.root_node();
    let mut out = Extract {
        lang,
        src,
        symbols: Vec::new(),
        uses: Vec::new(),
        module_uses: BTreeSet::new(),
    };
    // An explicit stack: generated or minified files nest deeper than the thread's stack.
    let mut stack: Vec<(Node<'_>, Option<usize>)> = vec![(root, None)];
    while let Some((node, enclosing)) = stack.pop() {
        let here = match out.definition(node, enclosing) {
            Some(i) => Some(i),
            None => {
                out.mention(node, enclosing);
                enclosing
            }
        };
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        for child in children.into_iter().rev() {
            stack.push((child, here));
        }
    }
    let Extract {
        mut symbols,
        uses,
        module_uses,
        ..
    } = out;
    for (s, u) in symbols.iter_mut().zip(uses) {
        s.uses = u.into_iter().filter(|n| *n != s.name).collect();
    }
    Ok(FileSymbols {
        symbols,
        module_uses: module_uses.into_iter().collect(),
        errors: root.has_error(),
    })
}

struct Extract<'s> {
    lang: Lang,
    src: &'s [u8],
    symbols: Vec<Symbol>,
    uses: Vec<BTreeSet<String>>,
    module_uses: BTreeSet<String>,
}

impl Extract<'_> {
    fn text(&self, n: Node<'_>) -> &str {
        n.utf8_text(self.src).unwrap_or("")
    }

    /// An identifier counts for every definition around it: a class uses what its methods use.
    fn mention(&mut self, node: Node<'_>, enclosing: Option<usize>) {
        let ident = matches!(
            node.kind(),
            "identifier"
                | "property_identifier"
                | "field_identifier"
                | "type_identifier"
                | "shorthand_property_identifier"
        );
        if !ident {
            return;
        }
        let name = self.text(node).to_owned();
        if name.is_empty() {
            return;
        }
        let mut at = enclosing;
        if at.is_none() {
            self.module_uses.insert(name);
            return;
        }
        while let Some(i) = at {
            self.uses[i].insert(name.clone());
            at = self.symbols[i].parent.map(|p| p as usize);
        }
    }

    /// If `node` defines something, record it and return its index.
    fn definition(&mut self, node: Node<'_>, enclosing: Option<usize>) -> Option<usize> {
        let (name, kind, fixture, params) = match self.lang {
            Lang::Python => self.python(node, enclosing)?,
            Lang::Go => self.go(node)?,
            _ => self.js(node)?,
        };
        let qual = match enclosing {
            Some(p) => format!("{}.{name}", self.symbols[p].qual),
            None => name.clone(),
        };
        // A decorator is part of what it decorates: a changed `@pytest.mark.parametrize` line
        // changes the test, not its class.
        let span = node
            .parent()
            .filter(|p| p.kind() == "decorated_definition")
            .unwrap_or(node);
        let text = self.src.get(span.byte_range()).unwrap_or_default();
        self.symbols.push(Symbol {
            name,
            qual,
            kind,
            start: span.start_position().row as u32 + 1,
            end: span.end_position().row as u32 + 1,
            hash: crate::keys::stable_hash(&[text]),
            parent: enclosing.map(|p| p as u32),
            fixture,
            params,
            uses: Vec::new(),
        });
        self.uses.push(BTreeSet::new());
        Some(self.symbols.len() - 1)
    }

    fn name_field(&self, node: Node<'_>) -> Option<String> {
        let n = node.child_by_field_name("name")?;
        Some(self.text(n).to_owned()).filter(|s| !s.is_empty())
    }

    fn python(
        &self,
        node: Node<'_>,
        enclosing: Option<usize>,
    ) -> Option<(String, Kind, bool, Vec<String>)> {
        let kind = match node.kind() {
            "function_definition" => Kind::Function,
            "class_definition" => Kind::Class,
            _ => return None,
        };
        let name = self.name_field(node)?;
        let decorated_fixture = node
            .parent()
            .filter(|p| p.kind() == "decorated_definition")
            .is_some_and(|p| {
                let mut c = p.walk();
                p.children(&mut c)
                    .filter(|d| d.kind() == "decorator")
                    .any(|d| self.text(d).contains("fixture"))
            });
        let in_class = enclosing.is_some_and(|p| self.symbols[p].kind == Kind::Class);
        let fixture = kind == Kind::Function
            && (decorated_fixture || (in_class && SETUP_METHODS.contains(&name.as_str())));
        let mut params = Vec::new();
        // `class URLSafeSerializer(Serializer)`: the last name of each base.
        if let Some(bases) = node.child_by_field_name("superclasses") {
            let mut c = bases.walk();
            for b in bases.named_children(&mut c) {
                let last = match b.kind() {
                    "identifier" => Some(b),
                    "attribute" => b.child_by_field_name("attribute"),
                    _ => None,
                };
                if let Some(id) = last {
                    params.push(self.text(id).to_owned());
                }
            }
        }
        if let Some(ps) = node.child_by_field_name("parameters") {
            let mut c = ps.walk();
            for p in ps.named_children(&mut c) {
                let id = match p.kind() {
                    "identifier" => Some(p),
                    "default_parameter" | "typed_default_parameter" => {
                        p.child_by_field_name("name")
                    }
                    "typed_parameter" => p.named_child(0),
                    _ => None,
                };
                if let Some(id) = id.filter(|i| i.kind() == "identifier") {
                    params.push(self.text(id).to_owned());
                }
            }
        }
        Some((name, kind, fixture, params))
    }

    fn go(&self, node: Node<'_>) -> Option<(String, Kind, bool, Vec<String>)> {
        match node.kind() {
            "function_declaration" | "method_declaration" => {
                Some((self.name_field(node)?, Kind::Function, false, Vec::new()))
            }
            "type_spec" => Some((self.name_field(node)?, Kind::Class, false, Vec::new())),
            _ => None,
        }
    }

    fn js(&self, node: Node<'_>) -> Option<(String, Kind, bool, Vec<String>)> {
        let plain = |kind| Some((self.name_field(node)?, kind, false, self.js_bases(node)));
        match node.kind() {
            "function_declaration" | "generator_function_declaration" | "method_definition" => {
                plain(Kind::Function)
            }
            "class_declaration" | "abstract_class_declaration" | "class" => plain(Kind::Class),
            "variable_declarator" => {
                let value = node.child_by_field_name("value")?;
                matches!(
                    value.kind(),
                    "arrow_function" | "function_expression" | "function" | "class"
                )
                .then_some(())?;
                plain(if value.kind() == "class" {
                    Kind::Class
                } else {
                    Kind::Function
                })
            }
            "call_expression" => self.js_block(node),
            _ => None,
        }
    }

    /// `class Cart extends Base`: the base's name.
    fn js_bases(&self, node: Node<'_>) -> Vec<String> {
        let mut c = node.walk();
        let Some(heritage) = node.children(&mut c).find(|n| n.kind() == "class_heritage") else {
            return Vec::new();
        };
        let mut c = heritage.walk();
        let found: Vec<String> = heritage
            .named_children(&mut c)
            .flat_map(|n| {
                // TypeScript wraps it: `extends_clause` → value.
                let v = if n.kind() == "extends_clause" {
                    n.child_by_field_name("value").unwrap_or(n)
                } else {
                    n
                };
                match v.kind() {
                    "identifier" => Some(self.text(v).to_owned()),
                    "member_expression" => v
                        .child_by_field_name("property")
                        .map(|p| self.text(p).to_owned()),
                    _ => None,
                }
            })
            .collect();
        found
    }

    /// `describe("cart", …)`, `it("adds", …)`, `test.each(…)("x", …)`, `beforeEach(…)`.
    fn js_block(&self, node: Node<'_>) -> Option<(String, Kind, bool, Vec<String>)> {
        let mut f = node.child_by_field_name("function")?;
        // `it.only(…)`, `test.skip(…)`: the object names the block.
        while f.kind() == "member_expression" {
            f = f.child_by_field_name("object")?;
        }
        if f.kind() != "identifier" {
            return None;
        }
        let callee = self.text(f);
        let args = node.child_by_field_name("arguments")?;
        if JS_HOOKS.contains(&callee) {
            return Some((callee.to_owned(), Kind::Function, true, Vec::new()));
        }
        let kind = if JS_TESTS.contains(&callee) {
            Kind::TestBlock
        } else if JS_SUITES.contains(&callee) {
            Kind::Suite
        } else {
            return None;
        };
        let first = args.named_child(0)?;
        let name = match first.kind() {
            "string" | "template_string" => self
                .text(first)
                .trim_matches(|c| c == '"' || c == '\'' || c == '`')
                .to_owned(),
            _ => return None,
        };
        Some((name, kind, false, Vec::new())).filter(|(n, ..)| !n.is_empty())
    }
}

/// Whether `lang` names its tests as functions (`test_x`, `TestX`) rather than blocks.
pub fn is_test_function(lang: Lang, s: &Symbol) -> bool {
    if s.kind != Kind::Function || s.fixture {
        return false;
    }
    match lang {
        Lang::Python => s.name.starts_with("test"),
        Lang::Go => {
            ["Test", "Benchmark", "Example", "Fuzz"]
                .iter()
                .any(|p| s.name.starts_with(p))
                && s.parent.is_none()
        }
        _ if lang.is_js() => false,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(f: &'a FileSymbols, qual: &str) -> &'a Symbol {
        f.symbols
            .iter()
            .find(|s| s.qual == qual)
            .unwrap_or_else(|| panic!("{qual} not in {:?}", f.symbols))
    }

    #[test]
    fn python_definitions_fixtures_and_uses() {
        let src = br#"import pytest
from invoicekit import Invoice

@pytest.fixture
def invoice(customer):
    return Invoice(customer, lines=[1, 2])

class TestTotals:
    def setup_method(self):
        self.rate = default_rate()

    def test_tax(self, invoice):
        assert invoice.tax() == 2
"#;
        let f = extract(Lang::Python, src).unwrap();
        assert!(!f.errors);
        let fx = find(&f, "invoice");
        assert!(find(&f, "TestTotals").params.is_empty());
        assert!(fx.fixture);
        assert_eq!(fx.params, ["customer"]);
        assert!(fx.uses.contains(&"Invoice".to_owned()));
        // The decorator line belongs to the fixture.
        assert_eq!((fx.start, fx.end), (4, 6));
        assert!(find(&f, "TestTotals.setup_method").fixture);
        let t = find(&f, "TestTotals.test_tax");
        assert!(!t.fixture && is_test_function(Lang::Python, t));
        assert_eq!(t.params, ["self", "invoice"]);
        assert!(t.uses.contains(&"tax".to_owned()));
        // A class uses what its methods use.
        assert!(
            find(&f, "TestTotals")
                .uses
                .contains(&"default_rate".to_owned())
        );
        assert!(f.module_uses.contains(&"pytest".to_owned()));
        assert_eq!(f.innermost(13), Some(3));
        assert_eq!(f.innermost(1), None);
    }

    #[test]
    fn javascript_and_typescript_blocks() {
        let js = br#"const { total } = require('./cart');
function helper(c) { return total(c); }
describe('cart', () => {
  beforeEach(() => { reset(); });
  it('sums lines', () => { expect(helper([1])).toBe(1); });
});
"#;
        let f = extract(Lang::JavaScript, js).unwrap();
        assert!(find(&f, "helper").uses.contains(&"total".to_owned()));
        let t = find(&f, "cart.sums lines");
        assert_eq!(t.kind, Kind::TestBlock);
        assert!(t.uses.contains(&"helper".to_owned()));
        assert!(find(&f, "cart.beforeEach").fixture);

        let ts = br#"export class Cart {
  private items: number[] = [];
  total(): number { return sum(this.items); }
}
export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
"#;
        let f = extract(Lang::TypeScript, ts).unwrap();
        assert!(!f.errors);
        assert!(find(&f, "Cart.total").uses.contains(&"sum".to_owned()));
        assert_eq!(find(&f, "sum").kind, Kind::Function);
    }

    #[test]
    fn go_functions_methods_and_types() {
        let src = br#"package shop

type Cart struct{ items []int }

func (c *Cart) Total() int { return Sum(c.items) }

func TestTotal(t *testing.T) {
	if (&Cart{}).Total() != 0 { t.Fatal("x") }
}
"#;
        let f = extract(Lang::Go, src).unwrap();
        assert_eq!(find(&f, "Cart").kind, Kind::Class);
        assert!(find(&f, "Total").uses.contains(&"Sum".to_owned()));
        let t = find(&f, "TestTotal");
        assert!(is_test_function(Lang::Go, t));
        assert!(t.uses.contains(&"Total".to_owned()));
    }

    #[test]
    fn broken_source_is_flagged() {
        let f = extract(Lang::Python, b"def f(:\n  return (\n").unwrap();
        assert!(f.errors);
    }
}
