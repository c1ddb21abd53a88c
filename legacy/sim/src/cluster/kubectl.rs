//! kubectl 1.37's commands as the legacy script calls them, against the in-memory [`Cluster`]:
//! `get`, `create configmap`, `patch --type merge`, `annotate`, `label`, `taint`, `cordon` and
//! `uncordon`, and `delete configmap` (which the script never runs: a person's or Nodewright's
//! action in a scenario). Each follows the order of checks in kubectl's source (client-side validation,
//! then the request, then the API server's validation), so the first error reported is the one
//! kubectl reports, worded the same.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::args::{self, Parsed, Spec};
use super::jsonpath::{self, ParseError};
use super::validate;
use super::{Cluster, ConfigMap, Node, Output, Taint, TaintEffect, golang, unbase64};

/// How a failed command ends: what kubectl writes to stderr before exiting with status 1.
enum Failure {
    /// A plain error: `error: MSG`.
    Plain(String),
    /// A usage error: `error: MSG` and the `-h` hint of the command.
    Usage(String, &'static str),
    /// A flag parsing error: `error: MSG` and the `--help` hint of the command.
    Flag(String, &'static str),
    /// Printed as it is (API status errors, multi-line aggregates).
    Verbatim(String),
}

impl Failure {
    fn render(self) -> String {
        let mut msg = match self {
            Failure::Plain(m) if m.starts_with("error: ") => m,
            Failure::Plain(m) => format!("error: {m}"),
            Failure::Usage(m, path) => {
                format!("error: {m}\nSee 'kubectl {path} -h' for help and examples")
            }
            Failure::Flag(m, path) => format!("error: {m}\nSee 'kubectl {path} --help' for usage."),
            Failure::Verbatim(m) => m,
        };
        if !msg.ends_with('\n') {
            msg.push('\n');
        }
        msg
    }
}

fn unsupported(what: impl std::fmt::Display) -> Failure {
    Failure::Plain(format!("the simulated cluster does not implement {what}"))
}

/// kubectl's rendering of several errors at once: one per line, no prefix.
fn aggregate(errors: Vec<String>) -> Failure {
    if errors.len() == 1 {
        errors
            .into_iter()
            .next()
            .map_or(Failure::Plain(String::new()), Failure::Plain)
    } else {
        Failure::Verbatim(errors.join("\n"))
    }
}

fn not_found(plural: &str, name: &str) -> String {
    format!(
        "Error from server (NotFound): {plural} {} not found",
        golang::quote(name)
    )
}

/// One API validation failure: field, offending value, message.
struct Cause {
    field: &'static str,
    value: String,
    message: String,
}

impl Cause {
    fn text(&self) -> String {
        format!(
            "{}: Invalid value: {}: {}",
            self.field,
            golang::quote(&self.value),
            self.message
        )
    }
}

/// An `Invalid` status as kubectl prints it (`checkErr` for StatusReasonInvalid).
fn invalid(kind: &str, name: &str, causes: &[Cause]) -> Failure {
    let head = format!("The {kind} {} is invalid", golang::quote(name));
    match causes {
        [one] => Failure::Verbatim(format!("{head}: {}", one.text())),
        many => {
            let mut out = format!("{head}: \n");
            for c in many {
                out.push_str("* ");
                out.push_str(&c.text());
                out.push('\n');
            }
            Failure::Verbatim(out)
        }
    }
}

/// An `Invalid` status's own message (`%s %q is invalid: %v`), for errors kubectl wraps.
fn invalid_message(kind: &str, name: &str, causes: &[Cause]) -> String {
    let list: Vec<String> = causes.iter().map(Cause::text).collect();
    let body = match list.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    format!("{kind} {} is invalid: {body}", golang::quote(name))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Node,
    ConfigMap,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "node" | "nodes" | "no" => Some(Kind::Node),
            "configmap" | "configmaps" | "cm" => Some(Kind::ConfigMap),
            _ => None,
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::ConfigMap => "configmap",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Node => "nodes",
            Kind::ConfigMap => "configmaps",
        }
    }
}

/// What `TYPE NAME...` or `TYPE/NAME...` arguments select.
enum Selection {
    All(Kind),
    Named(Vec<(Kind, String)>),
}

fn unknown_type(t: &str) -> Failure {
    Failure::Plain(format!(
        "the server doesn't have a resource type {}",
        golang::quote(t)
    ))
}

const TYPE_AND_SLASH: &str = "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'";

/// kubectl's resource builder for `ResourceTypeOrNameArgs`.
fn select(args: &[String]) -> Result<Selection, Failure> {
    let Some(first) = args.first() else {
        return Err(Failure::Plain(
            "resource(s) were provided, but no name was specified".into(),
        ));
    };
    if first.contains('/') {
        let mut named = Vec::new();
        for a in args {
            let Some((t, name)) = a.split_once('/') else {
                return Err(Failure::Plain(TYPE_AND_SLASH.into()));
            };
            let kind = Kind::parse(t).ok_or_else(|| unknown_type(t))?;
            named.push((kind, name.to_owned()));
        }
        return Ok(Selection::Named(named));
    }
    let kind = Kind::parse(first).ok_or_else(|| unknown_type(first))?;
    if args.len() == 1 {
        return Ok(Selection::All(kind));
    }
    let mut named = Vec::new();
    for a in &args[1..] {
        if a.contains('/') {
            return Err(Failure::Plain(TYPE_AND_SLASH.into()));
        }
        named.push((kind, a.clone()));
    }
    Ok(Selection::Named(named))
}

/// The Node names a node-only command (annotate, label) operates on.
fn node_names(args: &[String], command: &str) -> Result<Vec<String>, Failure> {
    match select(args)? {
        Selection::All(_) => Err(Failure::Plain(
            "resource(s) were provided, but no name was specified".into(),
        )),
        Selection::Named(named) => named
            .into_iter()
            .map(|(kind, name)| match kind {
                Kind::Node => Ok(name),
                Kind::ConfigMap => Err(unsupported(format!("kubectl {command} on ConfigMaps"))),
            })
            .collect(),
    }
}

struct Ctx<'a> {
    cluster: &'a mut Cluster,
    flags: Parsed,
    namespace: String,
    files: &'a dyn Fn(&str) -> std::io::Result<Vec<u8>>,
    now: i64,
    stdout: String,
    stderr: String,
}

/// Entry point of [`Cluster::kubectl`].
pub(crate) fn run(
    cluster: &mut Cluster,
    argv: &[String],
    files: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
    now: i64,
) -> Output {
    let words = args::strip_flags(argv, &args::all_specs());
    let (path, specs, skip): (&'static str, &[Spec], usize) =
        match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["get", ..] => ("get", args::GET, 1),
            ["create", "configmap" | "cm", ..] => ("create configmap", args::CREATE_CONFIGMAP, 2),
            ["patch", ..] => ("patch", args::PATCH, 1),
            ["annotate", ..] => ("annotate", args::OVERWRITE, 1),
            ["label", ..] => ("label", args::OVERWRITE, 1),
            ["taint", ..] => ("taint", args::OVERWRITE, 1),
            ["cordon", ..] => ("cordon", args::NONE, 1),
            ["uncordon", ..] => ("uncordon", args::NONE, 1),
            ["delete", "configmap" | "cm", ..] => ("delete configmap", args::NONE, 2),
            ["delete", "pod" | "pods" | "po", ..] => ("delete pod", args::NONE, 2),
            [] => return failed(String::new(), unsupported("kubectl without a command")),
            [first, second, ..] if *first == "create" => {
                return failed(String::new(), unsupported(format!("kubectl create {second}")));
            }
            [first, ..] => return failed(String::new(), unsupported(format!("kubectl {first}"))),
        };
    let specs: Vec<Spec> = [args::GLOBAL, specs].concat();
    let flags = match args::parse(argv, &specs) {
        Ok(f) => f,
        Err(msg) => return failed(String::new(), Failure::Flag(msg, path)),
    };
    let positional: Vec<String> = flags.positional.iter().skip(skip).cloned().collect();
    let namespace = flags.string("namespace").unwrap_or("default").to_owned();
    let mut ctx = Ctx {
        cluster,
        flags,
        namespace,
        files,
        now,
        stdout: String::new(),
        stderr: String::new(),
    };
    let result = match path {
        "get" => ctx.get(&positional),
        "create configmap" => ctx.create_config_map(&positional),
        "patch" => ctx.patch(&positional),
        "annotate" => ctx.annotate(&positional),
        "label" => ctx.label(&positional),
        "taint" => ctx.taint(&positional),
        "cordon" => ctx.cordon(&positional, true),
        "delete configmap" => ctx.delete_config_map(&positional),
        "delete pod" => ctx.delete_pod(&positional),
        _ => ctx.cordon(&positional, false),
    };
    let mut out = Output {
        stdout: ctx.stdout.into_bytes(),
        stderr: ctx.stderr.into_bytes(),
        code: 0,
    };
    if let Err(f) = result {
        out.stderr.extend_from_slice(f.render().as_bytes());
        out.code = 1;
    }
    out
}

fn failed(stdout: String, f: Failure) -> Output {
    Output {
        stdout: stdout.into_bytes(),
        stderr: f.render().into_bytes(),
        code: 1,
    }
}

enum Printer {
    Name,
    JsonPath(Vec<jsonpath::Piece>),
}

const ALLOWED_FORMATS: &str = "custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,kyaml,name,template,templatefile,wide,yaml";

fn printer(output: Option<&str>) -> Result<Printer, Failure> {
    let Some(output) = output else {
        return Err(unsupported("kubectl get without -o name or -o jsonpath=..."));
    };
    if output == "name" {
        return Ok(Printer::Name);
    }
    if output == "jsonpath" {
        return Err(Failure::Plain(
            "template format specified but no template given".into(),
        ));
    }
    if let Some(template) = output.strip_prefix("jsonpath=") {
        if template.is_empty() {
            return Err(Failure::Plain(
                "template format specified but no template given".into(),
            ));
        }
        return match jsonpath::parse(template) {
            Ok(p) => Ok(Printer::JsonPath(p)),
            Err(ParseError::Syntax(e)) => {
                Err(Failure::Plain(format!("error parsing jsonpath {template}, {e}")))
            }
            Err(ParseError::Unsupported(e)) => Err(Failure::Plain(e)),
        };
    }
    let format = output.split_once('=').map_or(output, |(f, _)| f);
    if ALLOWED_FORMATS.split(',').any(|f| f == format) {
        return Err(unsupported(format!("-o {format}")));
    }
    Err(Failure::Plain(format!(
        "unable to match a printer suitable for the output format {}, allowed formats are: {ALLOWED_FORMATS}",
        golang::quote(output)
    )))
}

const GET_NO_TYPE: &str = "You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.\n\nerror: Required resource not specified.\nUse \"kubectl explain <resource>\" for a detailed description of that resource (e.g. kubectl explain pods).\nSee 'kubectl get -h' for help and examples";

impl Ctx<'_> {
    fn object_json(&self, kind: Kind, name: &str) -> Option<Value> {
        match kind {
            Kind::Node => self.cluster.node(name).map(Node::to_json),
            Kind::ConfigMap => self
                .cluster
                .config_map(&self.namespace, name)
                .map(ConfigMap::to_json),
        }
    }

    fn get(&mut self, args: &[String]) -> Result<(), Failure> {
        if args.is_empty() {
            return Err(Failure::Verbatim(GET_NO_TYPE.into()));
        }
        let printer = printer(self.flags.string("output"))?;
        let selection = select(args)?;
        let (objects, missing, single) = match selection {
            Selection::All(kind) => {
                let objects: Vec<(Kind, String, Value)> = match kind {
                    Kind::Node => self
                        .cluster
                        .nodes()
                        .map(|n| (kind, n.name.clone(), n.to_json()))
                        .collect(),
                    Kind::ConfigMap => self
                        .cluster
                        .config_maps()
                        .filter(|c| c.namespace == self.namespace)
                        .map(|c| (kind, c.name.clone(), c.to_json()))
                        .collect(),
                };
                (objects, Vec::new(), false)
            }
            Selection::Named(named) => {
                let single = named.len() == 1;
                let mut objects = Vec::new();
                let mut missing = Vec::new();
                for (kind, name) in named {
                    match self.object_json(kind, &name) {
                        Some(v) => objects.push((kind, name, v)),
                        None => missing.push(not_found(kind.plural(), &name)),
                    }
                }
                (objects, missing, single)
            }
        };
        match printer {
            Printer::Name => {
                for (kind, name, _) in &objects {
                    self.stdout.push_str(&format!("{}/{name}\n", kind.singular()));
                }
            }
            Printer::JsonPath(template) => {
                if single {
                    if let Some((_, _, v)) = objects.first() {
                        self.stdout.push_str(&jsonpath::execute(&template, v));
                    }
                } else {
                    let items: Vec<Value> = objects.into_iter().map(|(_, _, v)| v).collect();
                    let list = serde_json::json!({
                        "apiVersion": "v1", "items": items, "kind": "List",
                        "metadata": {"resourceVersion": ""}
                    });
                    self.stdout.push_str(&jsonpath::execute(&template, &list));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Failure::Verbatim(missing.join("\n")))
        }
    }

    /// `kubectl delete configmap NAME...`, as kubectl 1.37 words it.
    fn delete_config_map(&mut self, args: &[String]) -> Result<(), Failure> {
        if args.is_empty() {
            return Err(Failure::Plain(
                "resource(s) were provided, but no name was specified".into(),
            ));
        }
        for name in args {
            let removed = self
                .cluster
                .config_maps
                .get_mut(&self.namespace)
                .and_then(|m| m.remove(name));
            if removed.is_none() {
                return Err(Failure::Verbatim(not_found("configmaps", name)));
            }
            self.stdout.push_str(&format!(
                "configmap {} deleted from {} namespace\n",
                golang::quote(name),
                self.namespace
            ));
        }
        Ok(())
    }

    /// `kubectl delete pod NAME...`, worded as `delete configmap` is. The pod is gone at once:
    /// the simulation has no kubelet to wait for, so it stands for one that stopped the
    /// containers.
    fn delete_pod(&mut self, args: &[String]) -> Result<(), Failure> {
        if args.is_empty() {
            return Err(Failure::Plain(
                "resource(s) were provided, but no name was specified".into(),
            ));
        }
        for name in args {
            if !self.cluster.delete_pod(&self.namespace, name) {
                return Err(Failure::Verbatim(not_found("pods", name)));
            }
            self.stdout.push_str(&format!(
                "pod {} deleted from {} namespace\n",
                golang::quote(name),
                self.namespace
            ));
        }
        Ok(())
    }

    fn create_config_map(&mut self, args: &[String]) -> Result<(), Failure> {
        if args.len() != 1 {
            return Err(Failure::Usage(
                format!("exactly one NAME is required, got {}", args.len()),
                "create configmap",
            ));
        }
        let name = args[0].clone();
        let mut cm = ConfigMap::new(self.namespace.clone(), name.clone());
        let check_key = |cm: &ConfigMap, key: &str| -> Result<(), Failure> {
            let errs = validate::config_map_key(key);
            if !errs.is_empty() {
                return Err(Failure::Plain(format!(
                    "{} is not a valid key name for a ConfigMap: {}",
                    golang::quote(key),
                    errs.join(",")
                )));
            }
            for (map, which) in [
                (cm.data.contains_key(key), "Data"),
                (cm.binary_data.contains_key(key), "BinaryData"),
            ] {
                if map {
                    return Err(Failure::Plain(format!(
                        "cannot add key {}, another key by that name already exists in {which} for ConfigMap {}",
                        golang::quote(key),
                        golang::quote(&cm.name)
                    )));
                }
            }
            Ok(())
        };
        for source in self.flags.all("from-file").to_vec() {
            let (key, path) = parse_file_source(&source)?;
            let content = (self.files)(&path).map_err(|e| file_error(&path, &e))?;
            check_key(&cm, &key)?;
            match String::from_utf8(content) {
                Ok(text) => {
                    cm.data.insert(key, text);
                }
                Err(bytes) => {
                    cm.binary_data.insert(key, bytes.into_bytes());
                }
            }
        }
        for source in self.flags.all("from-literal").to_vec() {
            let Some((key, value)) = source.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                return Err(Failure::Plain(format!(
                    "invalid literal source {source}, expected key=value"
                )));
            };
            check_key(&cm, key)?;
            cm.data.insert(key.to_owned(), value.to_owned());
        }
        // The API server's checks; kubectl wraps its error.
        let wrap = |msg: String| Failure::Plain(format!("failed to create configmap: {msg}"));
        if !self.cluster.has_namespace(&self.namespace) {
            return Err(wrap(format!(
                "namespaces {} not found",
                golang::quote(&self.namespace)
            )));
        }
        let causes: Vec<Cause> = validate::dns_subdomain(&name)
            .into_iter()
            .map(|message| Cause {
                field: "metadata.name",
                value: name.clone(),
                message,
            })
            .collect();
        if !causes.is_empty() {
            return Err(wrap(invalid_message("ConfigMap", &name, &causes)));
        }
        if self.cluster.config_map(&self.namespace, &name).is_some() {
            return Err(wrap(format!(
                "configmaps {} already exists",
                golang::quote(&name)
            )));
        }
        cm.created = self.now;
        self.cluster.add_config_map(cm).map_err(|e| wrap(e.to_string()))?;
        self.stdout.push_str(&format!("configmap/{name} created\n"));
        Ok(())
    }

    fn patch(&mut self, args: &[String]) -> Result<(), Failure> {
        let Some(patch) = self.flags.string("patch").map(str::to_owned) else {
            return Err(Failure::Plain(
                "must specify --patch or --patch-file containing the contents of the patch".into(),
            ));
        };
        if patch.is_empty() {
            return Err(Failure::Plain(
                "must specify --patch or --patch-file containing the contents of the patch".into(),
            ));
        }
        let patch_type = self
            .flags
            .string("type")
            .unwrap_or("strategic")
            .to_ascii_lowercase();
        if !["json", "merge", "strategic"].contains(&patch_type.as_str()) {
            return Err(Failure::Plain(format!(
                "--type must be one of [json merge strategic], not {}",
                golang::quote(self.flags.string("type").unwrap_or_default())
            )));
        }
        if patch_type != "merge" {
            return Err(unsupported(format!("kubectl patch --type {patch_type}")));
        }
        let (kind, name) = match select(args)? {
            Selection::Named(named) if named.len() == 1 => named.into_iter().next().ok_or_else(|| {
                Failure::Plain("resource(s) were provided, but no name was specified".into())
            })?,
            Selection::Named(_) => return Err(unsupported("kubectl patch of several objects")),
            Selection::All(_) => {
                return Err(Failure::Plain(
                    "resource(s) were provided, but no name was specified".into(),
                ));
            }
        };
        if kind != Kind::ConfigMap {
            return Err(unsupported("kubectl patch of Nodes"));
        }
        let Some(current) = self.cluster.config_map(&self.namespace, &name).cloned() else {
            return Err(Failure::Verbatim(not_found("configmaps", &name)));
        };
        let patch = decode_patch(&patch)?;
        let mut view = current.to_json();
        merge_patch(&mut view, &patch);
        let (updated, warnings) = config_map_from_json(&current, &view)?;
        for w in warnings {
            self.stderr
                .push_str(&format!("Warning: unknown field {}\n", golang::quote(&w)));
        }
        let changed = updated != current;
        if changed {
            let mut updated = updated;
            updated.resource_version = self.cluster.next_version();
            if let Some(m) = self.cluster.config_maps.get_mut(&self.namespace) {
                m.insert(name.clone(), updated);
            }
        }
        let suffix = if changed { "" } else { " (no change)" };
        self.stdout
            .push_str(&format!("configmap/{name} patched{suffix}\n"));
        Ok(())
    }

    fn node_or_not_found(&self, name: &str) -> Result<Node, Failure> {
        self.cluster
            .node(name)
            .cloned()
            .ok_or_else(|| Failure::Verbatim(not_found("nodes", name)))
    }

    /// Stores a changed Node with a new resourceVersion; an unchanged one is left as it is, as
    /// the API server does for a no-op patch.
    fn store_node(&mut self, mut node: Node) {
        if self.cluster.node(&node.name) == Some(&node) {
            return;
        }
        node.resource_version = self.cluster.next_version();
        self.cluster.nodes.insert(node.name.clone(), node);
    }

    fn annotate(&mut self, args: &[String]) -> Result<(), Failure> {
        let (resources, pairs) = resources_and_pairs(args, "annotation")?;
        let (new, remove) = parse_pairs(&pairs, "annotation")?;
        if resources.is_empty() {
            return Err(Failure::Plain(
                "one or more resources must be specified as <resource> <name> or <resource>/<name>".into(),
            ));
        }
        if new.is_empty() && remove.is_empty() {
            return Err(Failure::Plain(
                "at least one annotation update is required".into(),
            ));
        }
        let both: Vec<&str> = remove
            .iter()
            .filter(|k| new.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !both.is_empty() {
            return Err(Failure::Plain(format!(
                "can not both modify and remove the following annotation(s) in the same command: {}",
                both.join(", ")
            )));
        }
        let overwrite = self.flags.bool("overwrite");
        for name in node_names(&resources, "annotate")? {
            let mut node = self.node_or_not_found(&name)?;
            if !overwrite {
                let clashes: Vec<String> = new
                    .iter()
                    .filter_map(|(k, v)| {
                        node.annotations
                            .get(k)
                            .filter(|cur| *cur != v)
                            .map(|cur| format!("'{k}' already has a value ({cur})"))
                    })
                    .collect();
                if !clashes.is_empty() {
                    return Err(Failure::Plain(format!(
                        "--overwrite is false but found the following declared annotation(s): {}",
                        clashes.join("; ")
                    )));
                }
            }
            for (k, v) in &new {
                node.annotations.insert(k.clone(), v.clone());
            }
            for k in &remove {
                node.annotations.remove(k);
            }
            let causes: Vec<Cause> = node
                .annotations
                .keys()
                .flat_map(|k| {
                    validate::qualified_name(&k.to_lowercase())
                        .into_iter()
                        .map(|message| Cause {
                            field: "metadata.annotations",
                            value: k.clone(),
                            message,
                        })
                })
                .collect();
            if !causes.is_empty() {
                return Err(invalid("Node", &name, &causes));
            }
            self.store_node(node);
            self.stdout.push_str(&format!("node/{name} annotated\n"));
        }
        Ok(())
    }

    fn label(&mut self, args: &[String]) -> Result<(), Failure> {
        let (resources, specs) = resources_and_pairs(args, "label")?;
        let mut new = BTreeMap::new();
        let mut remove = Vec::new();
        for spec in &specs {
            if spec.contains('=') {
                let parts: Vec<&str> = spec.split('=').collect();
                let [key, value] = parts.as_slice() else {
                    return Err(Failure::Plain(format!("invalid label spec: {spec}")));
                };
                let errs = validate::label_value(value);
                if !errs.is_empty() {
                    return Err(Failure::Plain(format!(
                        "invalid label value: {}: {}",
                        golang::quote(spec),
                        errs.join(";")
                    )));
                }
                new.insert((*key).to_owned(), (*value).to_owned());
            } else if let Some(key) = spec.strip_suffix('-') {
                remove.push(key.to_owned());
            } else {
                return Err(Failure::Plain(format!("unknown label spec: {spec}")));
            }
        }
        if remove.iter().any(|k| new.contains_key(k)) {
            return Err(Failure::Plain(
                "can not both modify and remove a label in the same command".into(),
            ));
        }
        if resources.is_empty() {
            return Err(Failure::Plain(
                "one or more resources must be specified as <resource> <name> or <resource>/<name>".into(),
            ));
        }
        if new.is_empty() && remove.is_empty() {
            return Err(Failure::Plain("at least one label update is required".into()));
        }
        let overwrite = self.flags.bool("overwrite");
        for name in node_names(&resources, "label")? {
            let mut node = self.node_or_not_found(&name)?;
            for k in &remove {
                if !node.labels.contains_key(k) {
                    self.stdout
                        .push_str(&format!("label {} not found.\n", golang::quote(k)));
                }
            }
            if !overwrite {
                let clashes: Vec<String> =
                    new.iter()
                        .filter_map(|(k, v)| {
                            node.labels.get(k).filter(|cur| *cur != v).map(|cur| {
                                format!("'{k}' already has a value ({cur}), and --overwrite is false")
                            })
                        })
                        .collect();
                if !clashes.is_empty() {
                    return Err(aggregate(clashes));
                }
            }
            let mut added = false;
            let mut removed = false;
            for (k, v) in &new {
                if node.labels.get(k) != Some(v) {
                    node.labels.insert(k.clone(), v.clone());
                    added = true;
                }
            }
            for k in &remove {
                removed |= node.labels.remove(k).is_some();
            }
            if added || removed {
                let causes: Vec<Cause> = node
                    .labels
                    .iter()
                    .flat_map(|(k, v)| {
                        let key_errs = validate::qualified_name(k).into_iter().map(|message| Cause {
                            field: "metadata.labels",
                            value: k.clone(),
                            message,
                        });
                        let value_errs = validate::label_value(v).into_iter().map(|message| Cause {
                            field: "metadata.labels",
                            value: v.clone(),
                            message,
                        });
                        key_errs.chain(value_errs).collect::<Vec<_>>()
                    })
                    .collect();
                if !causes.is_empty() {
                    return Err(invalid("Node", &name, &causes));
                }
                self.store_node(node);
            }
            let msg = match (added, removed) {
                (true, true) => "modified",
                (true, false) => "labeled",
                (false, true) => "unlabeled",
                (false, false) => "not labeled",
            };
            self.stdout.push_str(&format!("node/{name} {msg}\n"));
        }
        Ok(())
    }

    fn taint(&mut self, args: &[String]) -> Result<(), Failure> {
        let mut resources = Vec::new();
        let mut specs = Vec::new();
        for s in args {
            let is_taint = s.contains('=') || s.contains(':') || s.ends_with('-');
            match (specs.is_empty(), is_taint) {
                (_, true) => specs.push(s.clone()),
                (true, false) => resources.push(s.clone()),
                (false, false) => {
                    return Err(Failure::Plain(format!(
                        "all resources must be specified before taint changes: {s}"
                    )));
                }
            }
        }
        if resources.is_empty() {
            return Err(Failure::Plain(
                "one or more resources must be specified as <resource> <name>".into(),
            ));
        }
        if specs.is_empty() {
            return Err(Failure::Plain("at least one taint update is required".into()));
        }
        let (add, remove) = parse_taints(&specs).map_err(|m| Failure::Usage(m, "taint"))?;
        let resource_type = resources[0].to_ascii_lowercase();
        match Kind::parse(&resource_type) {
            Some(Kind::Node) => {}
            Some(Kind::ConfigMap) => {
                return Err(Failure::Plain(format!(
                    "invalid resource type {resource_type}, only node types are supported"
                )));
            }
            None => return Err(unknown_type(&resource_type)),
        }
        let mut conflicts = Vec::new();
        for a in &add {
            for r in &remove {
                if a.key == r.key && r.effect.is_none_or(|e| e == a.effect) {
                    conflicts.push(format!(
                        "{}={}",
                        r.key,
                        r.effect.map(TaintEffect::as_str).unwrap_or_default()
                    ));
                }
            }
        }
        if !conflicts.is_empty() {
            return Err(Failure::Plain(format!(
                "can not both modify and remove the following taint(s) in the same command: {}",
                conflicts.join(", ")
            )));
        }
        if resources.len() < 2 {
            return Err(Failure::Plain(
                "at least one resource name must be specified since 'all' parameter is not set".into(),
            ));
        }
        let overwrite = self.flags.bool("overwrite");
        for name in &resources[1..] {
            let mut node = self.node_or_not_found(name)?;
            if !overwrite {
                let exists: Vec<&str> = add
                    .iter()
                    .flat_map(|t| {
                        node.taints
                            .iter()
                            .filter(|o| o.key == t.key && o.effect == t.effect)
                            .map(|_| t.key.as_str())
                    })
                    .collect();
                if !exists.is_empty() {
                    return Err(Failure::Plain(format!(
                        "node {name} already has {} taint(s) with same effect(s) and --overwrite is false",
                        exists.join(",")
                    )));
                }
            }
            let (operation, taints) = reorganize_taints(&node.taints, overwrite, &add, &remove)?;
            node.taints = taints;
            self.store_node(node);
            self.stdout.push_str(&format!("node/{name} {operation}\n"));
        }
        Ok(())
    }

    fn cordon(&mut self, args: &[String], desired: bool) -> Result<(), Failure> {
        let verb = if desired { "cordon" } else { "uncordon" };
        if args.is_empty() {
            return Err(Failure::Usage(
                format!("USAGE: {verb} NODE [flags]"),
                if desired { "cordon" } else { "uncordon" },
            ));
        }
        let nodes = args
            .iter()
            .map(|name| self.node_or_not_found(name))
            .collect::<Result<Vec<_>, _>>()?;
        for mut node in nodes {
            let name = node.name.clone();
            if node.unschedulable == desired {
                self.stdout.push_str(&format!("node/{name} already {verb}ed\n"));
            } else {
                node.unschedulable = desired;
                self.store_node(node);
                self.stdout.push_str(&format!("node/{name} {verb}ed\n"));
            }
        }
        Ok(())
    }
}

/// `GetResourcesAndPairs`: leading arguments are resources, the rest `KEY=VALUE` or `KEY-`.
fn resources_and_pairs(args: &[String], pair_type: &str) -> Result<(Vec<String>, Vec<String>), Failure> {
    let mut resources = Vec::new();
    let mut pairs = Vec::new();
    for s in args {
        let is_pair = (s.contains('=') && !s.starts_with('=')) || (s.ends_with('-') && s != "-");
        match (pairs.is_empty(), is_pair) {
            (_, true) => pairs.push(s.clone()),
            (true, false) => resources.push(s.clone()),
            (false, false) => {
                return Err(Failure::Plain(format!(
                    "all resources must be specified before {pair_type} changes: {s}"
                )));
            }
        }
    }
    Ok((resources, pairs))
}

/// `ParsePairs` with removal support.
fn parse_pairs(
    pairs: &[String],
    pair_type: &str,
) -> Result<(BTreeMap<String, String>, Vec<String>), Failure> {
    let mut new = BTreeMap::new();
    let mut remove = Vec::new();
    let mut invalid = Vec::new();
    for p in pairs {
        if p.contains('=') && !p.starts_with('=') {
            if let Some((k, v)) = p.split_once('=') {
                new.insert(k.to_owned(), v.to_owned());
            }
        } else if p.ends_with('-') && p != "-" {
            remove.push(p[..p.len() - 1].to_owned());
        } else {
            invalid.push(p.as_str());
        }
    }
    if !invalid.is_empty() {
        return Err(Failure::Plain(format!(
            "invalid {pair_type} format: {}",
            invalid.join(", ")
        )));
    }
    Ok((new, remove))
}

/// A taint to remove: by key, or by key and effect.
struct Removal {
    key: String,
    effect: Option<TaintEffect>,
}

impl Removal {
    fn describe(&self) -> String {
        match self.effect {
            Some(e) => format!("{}:{e}", self.key),
            None => self.key.clone(),
        }
    }
}

/// kubectl's `parseTaint`: `KEY=VALUE:EFFECT`, `KEY:EFFECT` or `KEY`.
fn parse_taint(spec: &str) -> Result<(String, String, Option<TaintEffect>), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (key, value, effect) = match parts.as_slice() {
        [key] => ((*key).to_owned(), String::new(), None),
        [kv, effect] => {
            let Some(effect) = TaintEffect::parse(effect) else {
                return Err(format!(
                    "invalid taint effect: {effect}, unsupported taint effect"
                ));
            };
            let kv: Vec<&str> = kv.split('=').collect();
            match kv.as_slice() {
                [key] => ((*key).to_owned(), String::new(), Some(effect)),
                [key, value] => {
                    let errs = validate::label_value(value);
                    if !errs.is_empty() {
                        return Err(format!("invalid taint spec: {spec}, {}", errs.join("; ")));
                    }
                    ((*key).to_owned(), (*value).to_owned(), Some(effect))
                }
                _ => return Err(format!("invalid taint spec: {spec}")),
            }
        }
        _ => return Err(format!("invalid taint spec: {spec}")),
    };
    let errs = validate::qualified_name(&key);
    if !errs.is_empty() {
        return Err(format!("invalid taint spec: {spec}, {}", errs.join("; ")));
    }
    Ok((key, value, effect))
}

/// kubectl's `parseTaints`.
fn parse_taints(specs: &[String]) -> Result<(Vec<Taint>, Vec<Removal>), String> {
    let mut add: Vec<Taint> = Vec::new();
    let mut remove = Vec::new();
    let mut seen = BTreeSet::new();
    for spec in specs {
        if let Some(body) = spec.strip_suffix('-') {
            let (key, _, effect) = parse_taint(body)?;
            remove.push(Removal { key, effect });
        } else {
            let (key, value, effect) = parse_taint(spec)?;
            let Some(effect) = effect else {
                return Err(format!("invalid taint spec: {spec}"));
            };
            if !seen.insert((effect, key.clone())) {
                return Err(format!(
                    "duplicated taints with the same key and effect: {{{key} {value} {effect} <nil>}}"
                ));
            }
            add.push(Taint::new(key, value, effect));
        }
    }
    Ok((add, remove))
}

/// kubectl's `reorganizeTaints`: new taints first, then the old ones they do not replace, then
/// removals; the operation word depends on what happened.
fn reorganize_taints(
    old: &[Taint],
    overwrite: bool,
    add: &[Taint],
    remove: &[Removal],
) -> Result<(&'static str, Vec<Taint>), Failure> {
    let mut taints: Vec<Taint> = add.to_vec();
    for o in old {
        if !taints.iter().any(|t| t.key == o.key && t.effect == o.effect) {
            taints.push(o.clone());
        }
    }
    let added = old.len() != taints.len();
    let mut errors = Vec::new();
    let mut deleted = false;
    for r in remove {
        let before = taints.len();
        taints.retain(|t| t.key != r.key || r.effect.is_some_and(|e| e != t.effect));
        // As in kubectl, only the last removal decides whether something was "deleted".
        deleted = taints.len() != before;
        if !deleted {
            errors.push(format!("taint {} not found", golang::quote(&r.describe())));
        }
    }
    if !errors.is_empty() {
        return Err(aggregate(errors));
    }
    let operation = if (added && deleted) || overwrite {
        "modified"
    } else if added {
        "tainted"
    } else {
        "untainted"
    };
    Ok((operation, taints))
}

/// `--from-file` source: `PATH` (key is the base name) or `KEY=PATH`.
fn parse_file_source(source: &str) -> Result<(String, String), Failure> {
    let separators = source.matches('=').count();
    match separators {
        0 => {
            let trimmed = source.trim_end_matches('/');
            let base = match trimmed.rsplit('/').next() {
                Some(b) if !b.is_empty() => b,
                _ if source.starts_with('/') => "/",
                _ => ".",
            };
            Ok((base.to_owned(), source.to_owned()))
        }
        1 if source.starts_with('=') => Err(Failure::Plain(format!(
            "key name for file path {} missing",
            &source[1..]
        ))),
        1 if source.ends_with('=') => Err(Failure::Plain(format!(
            "file path for key name {} missing",
            &source[..source.len() - 1]
        ))),
        1 => {
            let (k, p) = source.split_once('=').unwrap_or((source, ""));
            Ok((k.to_owned(), p.to_owned()))
        }
        _ => Err(Failure::Plain(
            "key names or file paths cannot contain '='".into(),
        )),
    }
}

fn file_error(path: &str, e: &std::io::Error) -> Failure {
    use std::io::ErrorKind;
    let why = match e.kind() {
        ErrorKind::NotFound => "no such file or directory".to_owned(),
        ErrorKind::PermissionDenied => "permission denied".to_owned(),
        ErrorKind::IsADirectory => {
            return unsupported(format!("--from-file with a directory ({path})"));
        }
        _ => e.to_string(),
    };
    Failure::Plain(format!("error reading {path}: {why}"))
}

/// What the API server makes of a merge patch body, after kubectl's YAML-to-JSON step (which
/// passes anything starting with `{` through untouched).
fn decode_patch(body: &str) -> Result<Value, Failure> {
    let bad = |m: &str| Failure::Verbatim(format!("Error from server (BadRequest): {m}"));
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        return match serde_json::from_str::<Value>(body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(bad("invalid JSON patch")),
        };
    }
    let value = match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => v,
        // A bare YAML word is a string.
        Err(_) if !trimmed.contains(':') && !trimmed.contains('\n') => {
            Value::String(trimmed.trim_end().to_owned())
        }
        Err(_) => return Err(unsupported("YAML patch bodies")),
    };
    let go_type = match value {
        Value::Null => return Err(bad("Invalid JSON Patch")),
        Value::Object(_) => return Ok(value),
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
    };
    Err(bad(&format!(
        "error decoding patch: json: cannot unmarshal {go_type} into Go value of type map[string]interface {{}}"
    )))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Reads a patched ConfigMap back, the way the API server decodes it: unknown fields are dropped
/// with a warning; fields of the wrong type are refused.
fn config_map_from_json(current: &ConfigMap, view: &Value) -> Result<(ConfigMap, Vec<String>), Failure> {
    let mut cm = current.clone();
    let mut warnings = Vec::new();
    let type_error = |field: &str| {
        Failure::Verbatim(format!(
            "The request is invalid: patch: Invalid value: {}: json: cannot unmarshal into Go struct field ConfigMap.{field} (the simulated cluster does not reproduce this message exactly)",
            golang::quote(&golang::json(view))
        ))
    };
    let strings = |v: Option<&Value>, field: &str| -> Result<BTreeMap<String, String>, Failure> {
        match v {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(type_error(field)),
                })
                .collect(),
            Some(_) => Err(type_error(field)),
        }
    };
    let Some(obj) = view.as_object() else {
        return Err(type_error(""));
    };
    for (k, v) in obj {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "data" => cm.data = strings(Some(v), "data")?,
            "binaryData" => {
                cm.binary_data = strings(Some(v), "binaryData")?
                    .into_iter()
                    .map(|(k, s)| {
                        unbase64(&s)
                            .map(|b| (k, b))
                            .ok_or_else(|| type_error("binaryData"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "metadata" => {
                let Some(meta) = v.as_object() else {
                    return Err(type_error("metadata"));
                };
                for (mk, mv) in meta {
                    match mk.as_str() {
                        "labels" => cm.labels = strings(Some(mv), "metadata.labels")?,
                        "annotations" => cm.annotations = strings(Some(mv), "metadata.annotations")?,
                        // A resourceVersion in the patch is a precondition: another one is the
                        // API server's 409, as kubectl prints it.
                        "resourceVersion" if current.to_json()["metadata"].get(mk) != Some(mv) => {
                            return Err(Failure::Verbatim(format!(
                                "Error from server (Conflict): Operation cannot be fulfilled on configmaps {}: the object has been modified; please apply your changes to the latest version and try again",
                                golang::quote(&current.name)
                            )));
                        }
                        "name" | "namespace" | "resourceVersion" | "creationTimestamp" => {
                            let original = current.to_json();
                            if original["metadata"].get(mk) != Some(mv) {
                                return Err(unsupported(format!("patches that change metadata.{mk}")));
                            }
                        }
                        "uid"
                        | "generation"
                        | "finalizers"
                        | "ownerReferences"
                        | "generateName"
                        | "deletionTimestamp"
                        | "deletionGracePeriodSeconds"
                        | "managedFields"
                        | "selfLink" => {
                            return Err(unsupported(format!("metadata.{mk} on ConfigMaps")));
                        }
                        other => warnings.push(format!("metadata.{other}")),
                    }
                }
                for gone in ["labels", "annotations"] {
                    if !meta.contains_key(gone) {
                        if gone == "labels" {
                            cm.labels.clear();
                        } else {
                            cm.annotations.clear();
                        }
                    }
                }
            }
            "immutable" => return Err(unsupported("immutable ConfigMaps")),
            other => warnings.push(other.to_owned()),
        }
    }
    if !obj.contains_key("data") {
        cm.data.clear();
    }
    if !obj.contains_key("binaryData") {
        cm.binary_data.clear();
    }
    Ok((cm, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> Cluster {
        let mut c = Cluster::new();
        c.add_node(Node::new("edge-1")).unwrap();
        c
    }

    fn kubectl(c: &mut Cluster, argv: &[&str]) -> (String, String, i32) {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let files = |p: &str| -> std::io::Result<Vec<u8>> {
            match p {
                "/etc/vx-rail/node.conf" => Ok(b"BOND_NAME=bond0\n".to_vec()),
                _ => Err(std::io::ErrorKind::NotFound.into()),
            }
        };
        let out = c.kubectl(&argv, b"", &files, 100);
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
            out.code,
        )
    }

    #[test]
    fn a_missing_config_map_is_not_found_on_stderr_with_exit_one() {
        let mut c = world();
        let out = kubectl(
            &mut c,
            &[
                "get",
                "configmap",
                "x",
                "-n",
                "kube-system",
                "-o",
                "jsonpath={.data.k}",
            ],
        );
        assert_eq!(
            out,
            (
                String::new(),
                "Error from server (NotFound): configmaps \"x\" not found\n".into(),
                1
            )
        );
    }

    #[test]
    fn the_takeover_template_prints_one_key_per_line_and_missing_keys_empty() {
        // The one read of the nodewright-takeover ConfigMap the script makes (lib/takeover.sh).
        let mut c = world();
        let created = kubectl(
            &mut c,
            &[
                "-n",
                "kube-system",
                "create",
                "configmap",
                "nodewright-takeover",
                "--from-literal=generation=3",
                "--from-literal=taints=operator",
                "--from-literal=storage-upgrade=shadow",
            ],
        );
        assert_eq!(created.2, 0, "{created:?}");
        let mut template = String::from(r#"jsonpath=generation={.data.generation}{"\n"}"#);
        for key in [
            "bootstrap",
            "migration",
            "storage-upgrade",
            "bond-flip",
            "taints",
            "boot-recovery",
        ] {
            template.push_str(&format!(r#"{key}={{.data.{key}}}{{"\n"}}"#));
        }
        let read = kubectl(
            &mut c,
            &[
                "get",
                "configmap",
                "nodewright-takeover",
                "-n",
                "kube-system",
                "-o",
                &template,
            ],
        );
        assert_eq!(
            read,
            (
                "generation=3\nbootstrap=\nmigration=\nstorage-upgrade=shadow\nbond-flip=\ntaints=operator\nboot-recovery=\n"
                    .into(),
                String::new(),
                0
            )
        );
    }

    #[test]
    fn from_file_reads_through_the_callback_and_keys_by_base_name() {
        let mut c = world();
        let out = kubectl(
            &mut c,
            &[
                "create",
                "configmap",
                "s",
                "-n",
                "kube-system",
                "--from-file=/etc/vx-rail/node.conf",
            ],
        );
        assert_eq!(out.0, "configmap/s created\n");
        let cm = c.config_map("kube-system", "s").unwrap();
        assert_eq!(cm.data["node.conf"], "BOND_NAME=bond0\n");
        assert_eq!(cm.created, 100);
    }

    #[test]
    fn a_no_op_change_keeps_the_resource_version() {
        let mut c = world();
        kubectl(&mut c, &["label", "node", "edge-1", "a=b"]);
        let rv = c.node("edge-1").unwrap().resource_version;
        let out = kubectl(&mut c, &["label", "node", "edge-1", "--overwrite", "a=b"]);
        assert_eq!(out.0, "node/edge-1 not labeled\n");
        kubectl(&mut c, &["annotate", "node", "edge-1", "x-"]);
        kubectl(
            &mut c,
            &["taint", "node", "edge-1", "--overwrite", "k=v:NoSchedule"],
        );
        let after_taint = c.node("edge-1").unwrap().resource_version;
        assert!(after_taint > rv);
        kubectl(
            &mut c,
            &["taint", "node", "edge-1", "--overwrite", "k=v:NoSchedule"],
        );
        assert_eq!(c.node("edge-1").unwrap().resource_version, after_taint);
        assert_eq!(c.resource_version(), after_taint);
    }

    #[test]
    fn merge_patch_null_deletes_a_key_and_a_repeat_is_no_change() {
        let mut c = world();
        c.add_config_map(ConfigMap::new("kube-system", "s").entry("a", "1").entry("b", "2"))
            .unwrap();
        let patch = [
            "patch",
            "configmap",
            "s",
            "-n",
            "kube-system",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"b":null,"c":"3"}}"#,
        ];
        assert_eq!(kubectl(&mut c, &patch).0, "configmap/s patched\n");
        assert_eq!(kubectl(&mut c, &patch).0, "configmap/s patched (no change)\n");
        let data = &c.config_map("kube-system", "s").unwrap().data;
        assert_eq!(data.keys().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn a_merge_patch_carrying_another_resource_version_is_a_conflict_and_changes_nothing() {
        let mut c = world();
        c.add_config_map(ConfigMap::new("kube-system", "s").entry("a", "1"))
            .unwrap();
        let rv = c.config_map("kube-system", "s").unwrap().resource_version;
        let patch = |version: u64| {
            let body =
                format!(r#"{{"metadata":{{"resourceVersion":"{version}"}},"data":{{"a":"{version}"}}}}"#);
            [
                "patch",
                "configmap",
                "s",
                "-n",
                "kube-system",
                "--type",
                "merge",
                "-p",
            ]
            .iter()
            .map(|a| (*a).to_owned())
            .chain(std::iter::once(body))
            .collect::<Vec<String>>()
        };
        let stale = patch(rv + 7);
        let stale: Vec<&str> = stale.iter().map(String::as_str).collect();
        let (_, err, code) = kubectl(&mut c, &stale);
        assert_eq!(code, 1);
        assert_eq!(
            err.trim_end(),
            "Error from server (Conflict): Operation cannot be fulfilled on configmaps \"s\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(c.config_map("kube-system", "s").unwrap().data["a"], "1");
        let current = patch(rv);
        let current: Vec<&str> = current.iter().map(String::as_str).collect();
        assert_eq!(kubectl(&mut c, &current).2, 0);
        assert_eq!(
            c.config_map("kube-system", "s").unwrap().data["a"],
            rv.to_string()
        );
    }

    #[test]
    fn overwriting_a_taint_moves_it_to_the_front() {
        let mut c = Cluster::new();
        c.add_node(
            Node::new("n")
                .taint(Taint::new("a", "", TaintEffect::NoSchedule))
                .taint(Taint::new("b", "1", TaintEffect::NoSchedule)),
        )
        .unwrap();
        let out = kubectl(&mut c, &["taint", "node", "n", "--overwrite", "b=2:NoSchedule"]);
        assert_eq!(out.0, "node/n modified\n");
        let keys: Vec<&str> = c
            .node("n")
            .unwrap()
            .taints
            .iter()
            .map(|t| t.key.as_str())
            .collect();
        assert_eq!(keys, ["b", "a"]);
    }

    #[test]
    fn cordon_twice_says_already_cordoned() {
        let mut c = world();
        assert_eq!(kubectl(&mut c, &["cordon", "edge-1"]).0, "node/edge-1 cordoned\n");
        assert_eq!(
            kubectl(&mut c, &["cordon", "edge-1"]).0,
            "node/edge-1 already cordoned\n"
        );
        assert!(c.node("edge-1").unwrap().unschedulable);
    }

    #[test]
    fn unsupported_invocations_fail_loudly_instead_of_guessing() {
        let mut c = world();
        for argv in [
            &["apply", "-f", "x.yaml"][..],
            &["get", "nodes"],
            &["get", "nodes", "-o", "yaml"],
            &["patch", "configmap", "s", "-p", "{}"],
        ] {
            let (_, err, code) = kubectl(&mut c, argv);
            assert_eq!(code, 1, "{argv:?}");
            assert!(
                err.contains("the simulated cluster does not implement"),
                "{argv:?}: {err}"
            );
        }
    }

    #[test]
    fn bad_arguments_never_panic() {
        let mut c = world();
        let nasty: &[&[&str]] = &[
            &[],
            &[""],
            &["-"],
            &["--"],
            &["--="],
            &["-n"],
            &["get", "-o"],
            &["get", "/", "-o", "name"],
            &["get", "node/", "-o", "name"],
            &["get", "node", "edge-1", "-o", "jsonpath={"],
            &["get", "node", "edge-1", "-o", "jsonpath={\"\\"],
            &["get", "node", "edge-1", "-o", "jsonpath={'é"],
            &["get", "node", "edge-1", "-o", "jsonpath={.a[}"],
            &["get", "node", "edge-1", "-o", "jsonpath={.é.ü\\}"],
            &["create", "configmap", "x", "--from-file=", "--from-literal=="],
            &["create", "configmap", "x", "--from-file=/"],
            &["patch", "configmap", "x", "--type", "merge", "-p", ""],
            &["patch", "configmap", "--type", "merge", "-p", "{}"],
            &["patch", "configmap/", "--type", "merge", "-p", "{\u{1}"],
            &["annotate", "-", "--", "-"],
            &["annotate", "node", "edge-1", "é=ü", "-"],
            &["label", "node", "edge-1", "=", "a="],
            &["taint", "node", "edge-1", ":", "=", "-", "::", "a=:NoSchedule"],
            &["taint", "-", "edge-1", "k:NoSchedule-"],
            &["cordon", "", "é"],
        ];
        for argv in nasty {
            let (_, _, code) = kubectl(&mut c, argv);
            assert!(code == 0 || code == 1, "{argv:?}");
        }
    }
}
