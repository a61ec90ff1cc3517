import { Type } from '@sinclair/typebox'
import { Envelope, errorResponses } from './envelope.js'

export const UserSchema = Type.Object({
  id: Type.Integer(),
  email: Type.String(),
  display_name: Type.String(),
  created_at: Type.String()
})

const Email = Type.String({ minLength: 3, maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' })
const Password = Type.String({ minLength: 8, maxLength: 256 })

export const RegisterBodySchema = Type.Object(
  {
    email: Email,
    password: Password,
    display_name: Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' })
  },
  { additionalProperties: false }
)

export const LoginBodySchema = Type.Object(
  { email: Email, password: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false }
)

export const AuthResultSchema = Envelope(Type.Object({ user: UserSchema, token: Type.String() }))

export const registerSchema = { body: RegisterBodySchema, response: { 201: AuthResultSchema, ...errorResponses } }
export const loginSchema = { body: LoginBodySchema, response: { 200: AuthResultSchema, ...errorResponses } }
export const meSchema = { response: { 200: Envelope(UserSchema), ...errorResponses } }
