import { Type } from '@sinclair/typebox'
import { BearerSecurity, Envelope, errorResponses } from './envelope.js'
import { DisplayText, EmailText } from './text.js'

export const UserSchema = Type.Object({
  id: Type.Integer(),
  email: Type.String(),
  display_name: Type.String(),
  created_at: Type.String()
})

const Email = EmailText
const Password = Type.String({ minLength: 8, maxLength: 256 })

export const RegisterBodySchema = Type.Object(
  {
    email: Email,
    password: Password,
    display_name: DisplayText(100)
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
export const meSchema = { security: BearerSecurity, response: { 200: Envelope(UserSchema), ...errorResponses } }
export const deleteMeSchema = { security: BearerSecurity, response: { 200: Envelope(Type.Null()), ...errorResponses } }
