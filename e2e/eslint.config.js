import base from '../tooling/eslint.config.js'

export default [
  ...base,
  {
    // The player page runs in the browser, not in Node.
    files: ['player/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { window: 'readonly', document: 'readonly', performance: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' }
    }
  }
]
