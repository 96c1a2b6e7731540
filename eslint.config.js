// Type-aware lint. The rules that matter most here are the promise rules: a
// promise nobody awaits or handles is a crash waiting for its rejection.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["gen/**", "dist/**", "node_modules/**", ".data/**", "coverage/**", ".dependency-cruiser.cjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["eslint.config.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // `void p` does not handle a rejection, so it does not count as handling.
      "@typescript-eslint/no-floating-promises": ["error", { checkThenables: true, ignoreVoid: false }],
      "@typescript-eslint/no-misused-promises": "error",
      // An async function without await still turns a throw into a rejection; that is often the point.
      "@typescript-eslint/require-await": "off",
      // Validation matches control characters on purpose.
      "no-control-regex": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // Tests and the bench read JSON from servers and logs; typing every parse buys little there.
    files: ["test/**", "bench/**", "scripts/**"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/restrict-template-expressions": "off",
      "@typescript-eslint/unbound-method": "off",
      "no-useless-assignment": "off",
    },
  },
);
