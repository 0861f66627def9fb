// The prompt editor's CodeMirror 6 bundle: one IIFE exposing window.StudioCodeMirror.create().
// Page wiring (which textareas, the server check, save and preview) lives in static/js/editor.js.
// Rebuild with `make editor-assets` (npm ci + esbuild) after changing this file or package.json.
import { Annotation, EditorState } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, drawSelection,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { StreamLanguage, bracketMatching, syntaxHighlighting, defaultHighlightStyle } from "@codemirror/language";
import { jinja2 } from "@codemirror/legacy-modes/mode/jinja2";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import { autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { linter, lintGutter, lintKeymap } from "@codemirror/lint";

const fromTextarea = Annotation.define();

const KEYWORDS = ["if", "elif", "else", "endif", "for", "in", "endfor", "set", "endset", "raw", "endraw",
  "filter", "endfilter", "with", "endwith", "macro", "endmacro", "not", "and", "or", "is", "true", "false", "none",
  "loop"];

// Where the cursor is: after "|" (a filter), inside {{ }} or {% %} (an expression), or in plain text.
function jinjaContext(text) {
  const open = Math.max(text.lastIndexOf("{{"), text.lastIndexOf("{%"));
  const close = Math.max(text.lastIndexOf("}}"), text.lastIndexOf("%}"));
  if (open < 0 || close > open) return "text";
  return /\|\s*[\w]*$/.test(text) ? "filter" : "expression";
}

function completionSource(options) {
  return (context) => {
    const word = context.matchBefore(/\w*/);
    const before = context.state.doc.sliceString(Math.max(0, context.pos - 2000), context.pos);
    const where = jinjaContext(before);
    if (where === "text") return null;
    if (word.from === word.to && !context.explicit && !/[|{%]\s*$/.test(before)) return null;
    let items;
    if (where === "filter") {
      items = (options.filters || []).map((name) => ({ label: name, type: "function", detail: "filter" }));
    } else {
      items = (options.variables ? options.variables() : []).map((v) => ({
        label: v.name, type: "variable", detail: v.type || "variable", info: v.description || undefined,
        boost: 10,
      }));
      items = items.concat(KEYWORDS.map((k) => ({ label: k, type: "keyword" })));
    }
    return { from: word.from, options: items, validFor: /^\w*$/ };
  };
}

function serverLinter(options) {
  return linter(async (view) => {
    if (!options.check) return [];
    const problems = await options.check(view.state.doc.toString());
    const doc = view.state.doc;
    return (problems || []).map((p) => {
      const number = Math.min(Math.max(p.line || 1, 1), doc.lines);
      const line = doc.line(number);
      return { from: line.from, to: Math.max(line.to, line.from), severity: "error", message: p.message,
        source: "sandbox" };
    });
  }, { delay: options.lintDelay || 400 });
}

// A CodeMirror editor in place of a textarea. The textarea stays in the form, visually hidden, and stays the
// source of truth: every edit is written back to it (so the form posts it as before and htmx sees an "input"
// event), and text put into it from outside (a script, a test) is taken into the editor.
function create(textarea, options = {}) {
  let writing = false;
  const extensions = [
    lineNumbers(), highlightActiveLineGutter(), highlightSpecialChars(), history(), drawSelection(),
    EditorState.allowMultipleSelections.of(true), bracketMatching(), closeBrackets(), highlightActiveLine(),
    highlightSelectionMatches(), StreamLanguage.define(jinja2),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    autocompletion({ override: [completionSource(options)], activateOnTyping: true }),
    serverLinter(options), lintGutter(), EditorView.lineWrapping,
    keymap.of([
      { key: "Mod-s", preventDefault: true, run: () => { if (options.onSave) options.onSave(); return true; } },
      { key: "Mod-Enter", preventDefault: true, run: () => { if (options.onPreview) options.onPreview(); return true; } },
      ...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...completionKeymap,
      ...lintKeymap,
    ]),
    EditorView.updateListener.of((update) => {
      if (!update.docChanged || update.transactions.some((tr) => tr.annotation(fromTextarea))) return;
      textarea.value = update.state.doc.toString();
      writing = true;
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
      writing = false;
    }),
    EditorView.contentAttributes.of({ "aria-label": options.label || "Template" }),
  ];
  const view = new EditorView({ state: EditorState.create({ doc: textarea.value, extensions }) });
  textarea.insertAdjacentElement("afterend", view.dom);
  textarea.classList.add("visually-hidden");
  textarea.setAttribute("tabindex", "-1");
  textarea.setAttribute("aria-hidden", "true");
  textarea.addEventListener("input", () => {
    if (writing || textarea.value === view.state.doc.toString()) return;
    view.dispatch({
      changes: { from: 0, to: view.state.doc.length, insert: textarea.value },
      annotations: fromTextarea.of(true),
    });
  });
  return view;
}

export { create, jinjaContext };
