/**
 * A reader for the YAML of the analysis thresholds file (analysis.yaml): nested mappings by indentation, plain
 * scalars, comments. That is all the file needs, and the reader stays free of dependencies and Node APIs, so the
 * k6 scripts (which have no YAML parser) can read the same file as the CLI. Anything else YAML allows (sequences,
 * flow style, quotes, anchors, several documents) is refused with its line, never misread.
 */

export class MappingSyntaxError extends Error {
  override readonly name = 'MappingSyntaxError';
  constructor(
    readonly line: number,
    readonly problem: string,
  ) {
    super(`line ${line}: ${problem}`);
  }
}

export interface ParsedMapping {
  value: Record<string, unknown>;
  /** The line of every key, by its dotted path ("errorRate.slo"). */
  lines: Record<string, number>;
}

interface Frame {
  indent: number;
  map: Record<string, unknown>;
  path: string;
  /** Indentation of its keys, once the first one is read. */
  childIndent?: number;
}

const KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

/** A plain scalar: a number when it reads as one (YAML 1.2's core schema), null for `null` / `~`, else the text. */
function scalar(text: string): unknown {
  if (NUMBER.test(text)) return Number(text);
  if (text === 'null' || text === '~') return null;
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}

/** Parses `text` (see the module's comment); throws MappingSyntaxError naming the line. */
export function parseMapping(text: string): ParsedMapping {
  const root: Record<string, unknown> = {};
  const lines: Record<string, number> = {};
  // Open mappings, innermost last: their indentation, their object, their dotted path.
  const stack: Frame[] = [{ indent: -1, map: root, path: '' }];
  // A key with nothing after its colon: its children must be indented deeper than it.
  let pendingParent: { indent: number; line: number } | null = null;
  let seenContent = false;
  const rows = text.split(/\r?\n/);
  for (const [i, raw] of rows.entries()) {
    const lineNo = i + 1;
    const withoutComment = raw.replace(/(^|\s)#.*$/, '').replace(/\s+$/, '');
    if (withoutComment.trim() === '') continue;
    if (withoutComment === '---' && !seenContent) continue;
    seenContent = true;
    const indentText = /^[ \t]*/.exec(withoutComment)?.[0] ?? '';
    if (indentText.includes('\t'))
      throw new MappingSyntaxError(lineNo, 'a tab in the indentation (YAML allows spaces only)');
    const indent = indentText.length;
    const body = withoutComment.slice(indent);
    if (/^(-\s|-$|[[{'"&*!|>%@`])/.test(body)) {
      throw new MappingSyntaxError(
        lineNo,
        `not supported here: ${JSON.stringify(body)} (write plain "key: value" lines, nested by indentation)`,
      );
    }
    const colon = body.search(/:(\s|$)/);
    if (colon <= 0)
      throw new MappingSyntaxError(lineNo, `expected "key: value" or "key:", got ${JSON.stringify(body)}`);
    const key = body.slice(0, colon);
    const rest = body.slice(colon + 1).trim();
    if (!KEY.test(key)) throw new MappingSyntaxError(lineNo, `not a plain key: ${JSON.stringify(key)}`);
    if (pendingParent) {
      if (indent <= pendingParent.indent)
        throw new MappingSyntaxError(
          pendingParent.line,
          'a key without a value and without indented keys under it',
        );
      pendingParent = null;
    }
    while (stack.length > 1 && indent <= (stack.at(-1) as Frame).indent) stack.pop();
    const parent = stack.at(-1) as Frame;
    if (parent.childIndent !== undefined && parent.childIndent !== indent)
      throw new MappingSyntaxError(
        lineNo,
        `indentation of ${indent} where the keys before it have ${parent.childIndent}`,
      );
    parent.childIndent = indent;
    if (Object.hasOwn(parent.map, key)) throw new MappingSyntaxError(lineNo, `duplicate key ${key}`);
    const path = parent.path ? `${parent.path}.${key}` : key;
    lines[path] = lineNo;
    if (rest === '') {
      const child: Record<string, unknown> = {};
      parent.map[key] = child;
      stack.push({ indent, map: child, path });
      pendingParent = { indent, line: lineNo };
    } else {
      if (/^[[{'"&*!|>]/.test(rest))
        throw new MappingSyntaxError(
          lineNo,
          `not supported here: ${JSON.stringify(rest)} (write a plain number)`,
        );
      parent.map[key] = scalar(rest);
    }
  }
  if (pendingParent)
    throw new MappingSyntaxError(
      pendingParent.line,
      'a key without a value and without indented keys under it',
    );
  return { value: root, lines };
}
