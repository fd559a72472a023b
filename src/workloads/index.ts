// Registers the IOMMU model's workloads by name, for every thread that may host them (imported for its effect
// by the worker entry point and the CLI).
import { registerWorkload } from '../runtime/workloads.js';
import { domainsWorkload } from './domains.js';
import { ioasidWorkload } from './ioasid.js';
import { svaWorkload } from './sva.js';

registerWorkload('sva', svaWorkload);
registerWorkload('domains', domainsWorkload);
registerWorkload('ioasid', ioasidWorkload);
