import { Module } from '@nestjs/common';
import { AuthController } from './auth.controller';

/** GET /auth/whoami, served by the api role. The key check itself is the global ApiKeyGuard. */
@Module({ controllers: [AuthController] })
export class AuthModule {}
