import base from '../../tooling/eslint.config.js'

export default [
  ...base,
  {
    // The watch page's script runs in the browser (a classic script after hls.js), not in Node.
    files: ['watch/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { window: 'readonly', document: 'readonly', navigator: 'readonly', URL: 'readonly', JSON: 'readonly' }
    }
  },
  {
    files: ['scripts/**/*.mjs'],
    languageOptions: { globals: { Buffer: 'readonly', console: 'readonly', process: 'readonly' } }
  }
]
