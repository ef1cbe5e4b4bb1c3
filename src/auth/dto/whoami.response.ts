import { ApiProperty } from '@nestjs/swagger';
import { API_SCOPES, type ApiScope } from '../../config/app-config';

export class WhoamiResponse {
  @ApiProperty({
    enum: API_SCOPES,
    example: 'read',
    description: "The key's scope; admin when the API needs no key (every endpoint is open then)",
  })
  scope!: ApiScope;

  @ApiProperty({ description: 'False when the API serves every request without a key', example: true })
  key_required!: boolean;
}
