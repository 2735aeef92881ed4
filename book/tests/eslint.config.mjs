// ESLint 9 (flat config, "recommended" rules) for the live labs' scripts and their Node tests.
// With eslint, @eslint/js and globals installed (npm i eslint@9 @eslint/js@9 globals) where
// this file can import them:  eslint -c book/tests/eslint.config.mjs \
//     book/tools/assets/optlab-lab.js book/tools/assets/optlab-lab-worker.js book/tests
// (offline, tests/test_live_lab.py runs `node --check` on them and their Node tests).
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["**/optlab-lab.js"],
    languageOptions: {
      ecmaVersion: 2020,
      sourceType: "script",
      globals: { ...globals.browser, module: "readonly" },
    },
  },
  {
    files: ["**/optlab-lab-worker.js"],
    languageOptions: { ecmaVersion: 2020, sourceType: "module", globals: globals.worker },
  },
  {
    files: ["**/*.mjs"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.node },
  },
];
