import { Type } from '@sinclair/typebox'

/** An integer variable with its default and lower bound. */
export const Int = (defaultValue: number, minimum = 0) => Type.Integer({ default: defaultValue, minimum })

/** An on/off variable: `true`, `false`, `1` or `0`, exactly; decoded to a boolean. */
export const Flag = (defaultValue: boolean) =>
  Type.Transform(
    Type.Union([Type.Literal('true'), Type.Literal('false'), Type.Literal('1'), Type.Literal('0')], {
      default: defaultValue ? 'true' : 'false',
      errorMessage: 'expected true or false'
    })
  )
    .Decode((value) => value === 'true' || value === '1')
    .Encode((on) => (on ? 'true' : 'false'))

/** pino's levels, `info` by default. */
export const LogLevel = Type.Union(
  [
    Type.Literal('fatal'),
    Type.Literal('error'),
    Type.Literal('warn'),
    Type.Literal('info'),
    Type.Literal('debug'),
    Type.Literal('trace'),
    Type.Literal('silent')
  ],
  { default: 'info' }
)
