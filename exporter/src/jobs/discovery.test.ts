import { kubernetesFromCgroup, slurmFromCgroup } from './discovery';

describe('jobs found from cgroup paths carry their own cgroup (whose counters can count them)', () => {
  test('Slurm: cgroup v1 (with and without the node prefix) and v2', () => {
    expect(slurmFromCgroup(['/slurm/uid_1000/job_42/step_0/task_0'])).toEqual({
      id: '42',
      name: 'slurm job 42',
      scheduler: 'slurm',
      user: '1000',
      cgroup: '/slurm/uid_1000/job_42',
    });
    expect(slurmFromCgroup(['/slurm_node7/uid_0/job_9'])?.cgroup).toBe('/slurm_node7/uid_0/job_9');
    expect(slurmFromCgroup(['/system.slice/slurmstepd.scope/job_77/step_batch/user/task_0'])).toEqual({
      id: '77',
      name: 'slurm job 77',
      scheduler: 'slurm',
      cgroup: '/system.slice/slurmstepd.scope/job_77',
    });
  });
  test('Kubernetes: the pod’s cgroup, with the cgroupfs and the systemd drivers', () => {
    expect(kubernetesFromCgroup(['/kubepods/burstable/pod3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff/0123456789ab'])).toEqual({
      id: '3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff',
      name: 'pod 3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff',
      scheduler: 'kubernetes',
      cgroup: '/kubepods/burstable/pod3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff',
    });
    const systemd =
      '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3f6e2a10_1b2c_4d5e_8f90_aabbccddeeff.slice/cri-containerd-abc.scope';
    expect(kubernetesFromCgroup([systemd])?.cgroup).toBe(
      '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3f6e2a10_1b2c_4d5e_8f90_aabbccddeeff.slice',
    );
  });
});
