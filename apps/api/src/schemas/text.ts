import { Type } from '@sinclair/typebox'

/**
 * Characters no name, title or email needs and attackers like: C0/C1 controls (NUL included), and the bidirectional
 * marks and overrides (U+202E turns `gpj.exe` into what reads as `exe.jpg`), line/paragraph separators, the BOM.
 */
const UNSAFE = '\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\uFEFF'
const NO_UNSAFE = 'no control or bidirectional-override characters'

/** Free text shown to others (titles, display names): at least one visible character, nothing unsafe. */
export const DisplayText = (maxLength: number) =>
  Type.String({
    minLength: 1,
    maxLength,
    pattern: `^(?=[^]*\\S)[^${UNSAFE}]*$`,
    errorMessage: `must have a visible character and ${NO_UNSAFE}`
  })

/** An email address as typed: one `@`, no spaces, nothing unsafe. The api normalizes it before storing or comparing. */
export const EmailText = Type.String({
  minLength: 3,
  maxLength: 254,
  pattern: `^[^\\s@${UNSAFE}]+@[^\\s@${UNSAFE}]+$`,
  errorMessage: `must be an email address with ${NO_UNSAFE}`
})
