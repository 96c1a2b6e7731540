// .dockerignore matching as Docker does it: each line is a pattern (Go's
// filepath.Match, plus "**" for any number of directories), "!" re-includes,
// the last pattern that matches a path or one of its parent directories
// decides, and a leading or trailing "/" does not matter.

interface Rule {
  readonly exclude: boolean;
  readonly regex: RegExp;
}

export class DockerIgnore {
  private readonly rules: Rule[];

  constructor(text: string) {
    this.rules = text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"))
      .map((l) => {
        const exclude = !l.startsWith("!");
        const pattern = (exclude ? l : l.slice(1).trim()).replace(/^\/+|\/+$/g, "");
        return { exclude, regex: globToRegex(pattern) };
      });
  }

  /** Whether `path` (relative to the context, "/"-separated) is sent to the build. */
  includes(path: string): boolean {
    const parts = path.split("/");
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let excluded = false;
    for (const rule of this.rules) {
      if (candidates.some((c) => rule.regex.test(c))) excluded = rule.exclude;
    }
    return !excluded;
  }
}

function globToRegex(pattern: string): RegExp {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*" && pattern[i + 1] === "*") {
      // "**/" matches zero or more directories; a trailing "**" matches everything below.
      if (pattern[i + 2] === "/") {
        out += "(?:.*/)?";
        i += 2;
      } else {
        out += ".*";
        i += 1;
      }
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i);
      if (end === -1) throw new Error(`.dockerignore: unclosed [ in "${pattern}"`);
      out += `[${pattern.slice(i + 1, end)}]`;
      i = end;
    } else out += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}
