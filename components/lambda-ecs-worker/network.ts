/** Step "network": the tasks' subnets (the default VPC's by default) and security groups (a new egress-only one by default). */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { ChildOptions, ResolvedLambdaEcsWorkerArgs } from "./args";

export interface NetworkResources {
    subnetIds: pulumi.Output<string[]>;
    securityGroupIds: pulumi.Output<string[]>;
    assignPublicIp: boolean;
    /** The egress-only security group, when this step created it. */
    securityGroup?: aws.ec2.SecurityGroup;
}

export function createNetwork(name: string, r: ResolvedLambdaEcsWorkerArgs, { parent }: ChildOptions): NetworkResources {
    let subnetIds: pulumi.Output<string[]>;
    let vpcId: pulumi.Input<string> | undefined = r.vpcId;
    if (r.useDefaultVpc) {
        const vpc = aws.ec2.getVpcOutput({ default: true }, { parent });
        vpcId = vpc.id;
        subnetIds = aws.ec2.getSubnetsOutput({ filters: [{ name: "vpc-id", values: [vpc.id] }] }, { parent }).ids;
    } else {
        subnetIds = pulumi.output(r.subnetIds!);
    }
    const assignPublicIp = r.assignPublicIp;
    if (r.securityGroupIds !== undefined) {
        return { subnetIds, securityGroupIds: pulumi.output(r.securityGroupIds), assignPublicIp };
    }
    const securityGroup = new aws.ec2.SecurityGroup(
        `${name}-sg`,
        {
            vpcId,
            description: `Egress-only security group of the ${name} worker tasks`,
            egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }],
            tags: r.tags,
        },
        { parent },
    );
    return { subnetIds, securityGroupIds: pulumi.output([securityGroup.id]), assignPublicIp, securityGroup };
}
